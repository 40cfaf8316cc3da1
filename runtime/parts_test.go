package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// These tests build each part of the runtime alone, from fakes of exactly
// the dependencies its constructor takes.

// execOnlyTask is a container monitor that can only run processes: each
// Exec records its config and ends with the next of codes.
type execOnlyTask struct {
	Task  // anything else panics: the part must not use it
	mu    sync.Mutex
	codes []int
	got   []ExecConfig
}

func (t *execOnlyTask) Exec(ctx context.Context, cfg ExecConfig) (ExecTask, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got = append(t.got, cfg)
	code := 0
	if len(t.codes) > 0 {
		code, t.codes = t.codes[0], t.codes[1:]
	}
	if cfg.Streams.Stdout != nil {
		_, _ = cfg.Streams.Stdout.Write([]byte("ran " + cfg.ID))
	}
	return doneExec(code), nil
}

func (t *execOnlyTask) execs() []ExecConfig {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ExecConfig(nil), t.got...)
}

type doneExec int

func (doneExec) Pid() int                                 { return 0 }
func (doneExec) Resize(context.Context, uint, uint) error { return nil }
func (d doneExec) Wait(ctx context.Context) (int, error)  { return int(d), nil }

func runningCtr(t *testing.T, task Task, hc *container.HealthConfig) *ctr {
	rec := &Record{ID: strings.Repeat("ab", 32), Name: "/part", Config: &container.Config{Image: "busybox", Healthcheck: hc},
		HostConfig: &container.HostConfig{}, State: State{Status: container.StateRunning}}
	rec.State.Health = initialHealth(rec)
	c := newCtr(rec)
	c.task = task
	return c
}

// The exec table needs the events sink and where a bundle is: it reads
// the container's process from the bundle, runs the exec through the
// container's monitor and reports its life as events and in inspect.
func TestExecTableAlone(t *testing.T) {
	bundle := t.TempDir()
	proc, err := json.Marshal(specs.Spec{Process: &specs.Process{Args: []string{"/init"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/"}})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(bundle, "config.json"), proc, 0o600))
	ev := &recorder{}
	x := newExecTable(ev, func(string) string { return bundle })
	task := &execOnlyTask{codes: []int{3}}
	c := runningCtr(t, task, nil)

	id, err := x.create(c, container.ExecCreateRequest{Cmd: []string{"echo", "hi"}, Env: []string{"A=2"}, AttachStdout: true})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(x.ids(c), []string{id}))
	run, err := x.start(id, container.ExecStartRequest{})
	assert.NilError(t, err)
	_, err = x.start(id, container.ExecStartRequest{})
	assert.Check(t, errdefs.IsConflict(err), "a second start: %v", err)

	var out strings.Builder
	assert.NilError(t, run.Run(context.Background(), nil, &out, nil))
	assert.Check(t, is.Equal(out.String(), "ran "+id))
	got := task.execs()
	assert.Assert(t, is.Len(got, 1))
	var p specs.Process
	assert.NilError(t, json.Unmarshal(got[0].ProcessJSON, &p))
	assert.Check(t, is.DeepEqual(p.Args, []string{"echo", "hi"}))
	assert.Check(t, is.DeepEqual(p.Env, []string{"PATH=/bin", "A=2"}))

	e, err := x.get(id)
	assert.NilError(t, err)
	<-e.done
	e.mu.Lock()
	code := *e.exitCode
	e.mu.Unlock()
	assert.Check(t, is.Equal(code, 3))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := len(ev.actions(c.rec.ID)); n < 3 {
			return poll.Continue("%d events", n)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	assert.Check(t, is.DeepEqual(ev.actions(c.rec.ID), []string{"exec_create: echo hi", "exec_start: echo hi", "exec_die"}))

	x.forget(c)
	_, err = x.get(id)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}

// preparedTask is the exec part as the health checker sees it.
type preparedTask struct{ task Task }

func (p preparedTask) prepare(c *ctr, cfg container.ExecCreateRequest) (Task, *Record, []byte, error) {
	b, err := json.Marshal(specs.Process{Args: cfg.Cmd})
	return p.task, c.rec, b, err
}

// The health checker needs a way to run a process, to save a record, the
// events sink and a background runner: a passing probe makes the
// container healthy, failures past the retries unhealthy, and the loop
// ends with its context.
func TestHealthCheckerAlone(t *testing.T) {
	task := &execOnlyTask{codes: []int{0, 1, 1}}
	c := runningCtr(t, task, &container.HealthConfig{Test: []string{"CMD", "check"}, Interval: time.Millisecond, Retries: 2})
	var mu sync.Mutex
	var saved []container.HealthStatus
	save := func(c *ctr) { // called with c.mu held
		mu.Lock()
		defer mu.Unlock()
		saved = append(saved, c.rec.State.Health.Status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	ev := &recorder{}
	h := newHealthChecker(ctx, preparedTask{task}, save, ev, func(f func()) { bg.Add(1); go func() { defer bg.Done(); f() }() })
	c.mu.Lock()
	h.start(c)
	c.mu.Unlock()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		mu.Lock()
		defer mu.Unlock()
		if len(saved) < 3 {
			return poll.Continue("%d probes recorded", len(saved))
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	cancel()
	bg.Wait()
	mu.Lock()
	assert.Check(t, is.DeepEqual(saved[:3], []container.HealthStatus{container.Healthy, container.Healthy, container.Unhealthy}))
	mu.Unlock()
	var args specs.Process
	assert.NilError(t, json.Unmarshal(task.execs()[0].ProcessJSON, &args))
	assert.Check(t, is.DeepEqual(args.Args, []string{"check"}))
	assert.Check(t, is.DeepEqual(ev.actions(c.rec.ID)[:2], []string{"health_status: healthy", "health_status: unhealthy"}))
}

// attachTask is a monitor that can only attach: it writes its greeting to
// each attached stdout and ends the stream.
type attachTask struct {
	Task
	greeting string
}

func (t attachTask) Attach(ctx context.Context, s Streams) (func() error, error) {
	return func() error {
		_, err := s.Stdout.Write([]byte(t.greeting))
		return err
	}, nil
}

type replayFunc func(ctx context.Context, rec *Record, stdout, stderr io.Writer) error

func (f replayFunc) replay(ctx context.Context, rec *Record, stdout, stderr io.Writer) error {
	return f(ctx, rec, stdout, stderr)
}

// The attacher needs the events sink and a log replayer: it replays the log
// first (logs=1), streams from the container's monitor, and a stream to a
// container that is not running waits for its next start.
func TestAttacherAlone(t *testing.T) {
	ev := &recorder{}
	at := newAttacher(ev, replayFunc(func(_ context.Context, _ *Record, stdout, _ io.Writer) error {
		_, err := stdout.Write([]byte("old "))
		return err
	}))
	c := runningCtr(t, attachTask{greeting: "live"}, nil)
	a, err := at.open(context.Background(), c, "part", AttachOptions{Stdout: true, Stream: true, Logs: true})
	assert.NilError(t, err)
	var out strings.Builder
	ready := 0
	assert.NilError(t, a.Run(context.Background(), nil, &out, nil, func() { ready++ }))
	assert.Check(t, is.Equal(out.String(), "old live"))
	assert.Check(t, is.Equal(ready, 1))
	assert.Check(t, is.DeepEqual(ev.actions(c.rec.ID), []string{"attach"}))

	t.Run("pending until the next start", func(t *testing.T) {
		stopped := runningCtr(t, nil, nil)
		a, err := at.open(context.Background(), stopped, "part", AttachOptions{Stdout: true, Stream: true})
		assert.NilError(t, err)
		var out strings.Builder
		done := make(chan error, 1)
		go func() { done <- a.Run(context.Background(), nil, &out, nil, func() {}) }()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			stopped.mu.Lock()
			defer stopped.mu.Unlock()
			if len(stopped.pendingAttach) == 0 {
				return poll.Continue("not pending yet")
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second))
		stopped.mu.Lock()
		stopped.connectPending(attachTask{greeting: "started"})
		stopped.mu.Unlock()
		assert.NilError(t, <-done)
		assert.Check(t, is.Equal(out.String(), "started"))
	})

	// docker-py's attach_socket(logs=1, stream=1) then start: the client
	// starts the container as soon as it has the answer, and the container
	// prints and exits at once; the run's output is streamed after the
	// log's, three times over
	t.Run("logs then a start made on the answer", func(t *testing.T) {
		stopped := runningCtr(t, nil, nil)
		for i := 0; i < 3; i++ {
			a, err := at.open(context.Background(), stopped, "part", AttachOptions{Stdout: true, Stream: true, Logs: true})
			assert.NilError(t, err)
			var out strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = a.Run(ctx, nil, &out, nil, func() {
				stopped.mu.Lock()
				stopped.connectPending(attachTask{greeting: "started"})
				stopped.mu.Unlock()
			})
			cancel()
			assert.NilError(t, err, "round %d: the start's output was missed", i)
			assert.Check(t, is.Equal(out.String(), "old started"), "round %d", i)
		}
	})
}

type exitFile struct {
	st  ExitStatus
	ok  bool
	got []string
}

func (e *exitFile) ReadExit(dir string) (ExitStatus, bool, error) {
	e.got = append(e.got, dir)
	return e.st, e.ok, nil
}

type ociLog struct {
	killErr error
	calls   []string
}

func (o *ociLog) Kill(_ context.Context, id string, sig syscall.Signal) error {
	o.calls = append(o.calls, fmt.Sprintf("kill %s %d", id, sig))
	return o.killErr
}

func (o *ociLog) Delete(_ context.Context, id string) error {
	o.calls = append(o.calls, "delete "+id)
	return nil
}

// goneMonitors needs the exits monitors leave, the OCI runtime and where
// the monitor state is: a recorded exit is taken as it is; without one the
// container is killed (137) or found stopped (255), and the runtime's state
// goes in every case.
func TestGoneMonitorsAlone(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		exit    exitFile
		killErr error
		code    int
		lost    bool
		oci     []string
	}{
		{"recorded exit", exitFile{st: ExitStatus{Code: 3, ExitedAt: at}, ok: true}, nil, 3, false, []string{"delete c1"}},
		{"killed unsupervised", exitFile{}, nil, 137, true, []string{"kill c1 9", "delete c1"}},
		{"already stopped", exitFile{}, errdefs.ErrConflict, 255, true, []string{"kill c1 9", "delete c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oci := &ociLog{killErr: tc.killErr}
			g := newGoneMonitors(&tc.exit, oci, func(id string) string { return "/state/" + id })
			st, lost := g.exit(context.Background(), "c1")
			assert.Check(t, is.Equal(st.Code, tc.code))
			assert.Check(t, is.Equal(lost != "", tc.lost), "lost: %q", lost)
			assert.Check(t, is.DeepEqual(oci.calls, tc.oci))
			assert.Check(t, is.DeepEqual(tc.exit.got, []string{"/state/c1"}))
		})
	}
}
