package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/internal/detachkeys"
	"github.com/berthd/berth/internal/dropwriter"
	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/oci"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// execProc is one exec instance, kept in memory like dockerd does.
type execProc struct {
	mu       sync.Mutex
	id       string
	c        *ctr
	cfg      container.ExecCreateRequest
	started  bool
	running  bool
	exitCode *int
	pid      int
	task     ExecTask
	done     chan struct{}
	ended    time.Time
}

// execRetention is how long an ended exec stays inspectable.
const execRetention = 5 * time.Minute

// execTable owns the exec instances (docker exec) and runs them with their
// streams. It needs only the events sink and where a container's bundle is
// (the container's process is the base of every exec); the monitor to run
// in comes with the container. Lock order: a container's mu, then mu.
type execTable struct {
	events    Publisher
	bundleDir func(id string) string
	mu        sync.RWMutex
	byID      map[string]*execProc // every exec; c.execs holds a container's
}

func newExecTable(events Publisher, bundleDir func(id string) string) *execTable {
	return &execTable{events: events, bundleDir: bundleDir, byID: map[string]*execProc{}}
}

// ExecCreate registers a process to run in a running container.
func (s *Service) ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return "", err
	}
	return s.execs.create(c, req)
}

func (x *execTable) create(c *ctr, req container.ExecCreateRequest) (string, error) {
	if len(req.Cmd) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	if req.DetachKeys != "" {
		if _, err := detachkeys.Parse(req.DetachKeys); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := execAllowed(c); err != nil {
		return "", err
	}
	e := &execProc{id: newID(), c: c, cfg: req, done: make(chan struct{})}
	x.mu.Lock()
	x.prune(c)
	c.execs[e.id] = e
	x.byID[e.id] = e
	x.mu.Unlock()
	containerEvent(x.events, c.rec, events.Action(string(events.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	return e.id, nil
}

func execAllowed(c *ctr) error {
	switch {
	case c.rec.State.Status == container.StatePaused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is paused, unpause the container before exec", c.rec.ID))
	case c.task == nil:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.rec.ID))
	}
	return nil
}

func (x *execTable) get(id string) (*execProc, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e, ok := x.byID[id]; ok {
		return e, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
}

// ExecRun is an exec accepted for starting; Run streams it.
type ExecRun struct {
	Tty    bool
	x      *execTable
	e      *execProc
	req    container.ExecStartRequest
	cancel context.CancelFunc
}

// ExecStart checks that the exec can start; the caller then takes over the
// connection and calls Run.
func (s *Service) ExecStart(ctx context.Context, id string, req container.ExecStartRequest) (*ExecRun, error) {
	return s.execs.start(id, req)
}

func (x *execTable) start(id string, req container.ExecStartRequest) (*ExecRun, error) {
	e, err := x.get(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		if e.running {
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s is already running", id))
		}
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s has already run", id))
	}
	c := e.c
	c.mu.Lock()
	err = execAllowed(c)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e.started = true
	// the stream is framed as the start request says, whatever the
	// process has (a terminal or not), as dockerd does
	return &ExecRun{Tty: req.Tty, x: x, e: e, req: req, cancel: func() {}}, nil
}

// TTY says how the stream is framed: raw when the start asked for a TTY,
// multiplexed otherwise (the router's ExecStream).
func (r *ExecRun) TTY() bool { return r.Tty }

// Cancel gives up an exec that was not run.
func (r *ExecRun) Cancel() {
	r.e.mu.Lock()
	r.e.started = false
	r.e.mu.Unlock()
}

// Run starts the process and streams it until it ends. With nil streams
// (detached exec) it returns once the process started.
func (r *ExecRun) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	x, e := r.x, r.e
	cfg := e.cfg
	task, rec, pj, err := x.prepare(e.c, cfg)
	if task == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
	}
	if err != nil {
		return x.failed(e, err, stdout)
	}
	detached := stdout == nil && stderr == nil && stdin == nil
	var streams Streams
	var detachedCh <-chan struct{}
	if !detached {
		// a client that goes away must not cost the exec its exit code
		// (the stream would break): its output is dropped from then on
		stdout, stderr = dropwriter.New(stdout), dropwriter.New(stderr)
		if cfg.AttachStdout {
			streams.Stdout = stdout
		}
		if cfg.AttachStderr {
			streams.Stderr = stderr
			if cfg.Tty {
				streams.Stderr = nil
			}
		}
		if cfg.AttachStdin && stdin != nil {
			keys := cfg.DetachKeys
			if keys == "" {
				keys = detachkeys.Default
			}
			seq, _ := detachkeys.Parse(keys)
			dr := detachkeys.NewReader(stdin, seq)
			detachedCh = dr.Detached()
			streams.Stdin = dr
		} else if stdin != nil {
			safe.Go("drain exec input", func() { _, _ = io.Copy(io.Discard, stdin) })
		}
	}
	size := cfg.ConsoleSize
	if r.req.ConsoleSize != nil {
		size = r.req.ConsoleSize
	}
	var consoleSize [2]uint
	if size != nil {
		consoleSize = *size
	}
	xt, err := task.Exec(ctx, ExecConfig{ID: e.id, ProcessJSON: pj, Terminal: cfg.Tty, ConsoleSize: consoleSize, Streams: streams})
	if err != nil {
		return x.failed(e, err, stdout)
	}
	e.mu.Lock()
	e.task, e.pid, e.running = xt, xt.Pid(), true
	e.mu.Unlock()
	containerEvent(x.events, rec, events.Action(string(events.ActionExecStart)+": "+strings.Join(cfg.Cmd, " ")), map[string]string{"execID": e.id})

	finish := func() {
		code, err := xt.Wait(context.WithoutCancel(ctx))
		if err != nil {
			logrus.WithError(err).Debugf("exec %s wait", e.id[:12])
			code = 126
		}
		e.mu.Lock()
		e.running, e.exitCode, e.ended = false, &code, time.Now()
		e.mu.Unlock()
		close(e.done)
		containerEvent(x.events, rec, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
	}
	if detached {
		safe.Go("detached exec "+short(e.id), finish)
		return nil
	}
	finished := make(chan struct{})
	safe.Go("exec "+short(e.id), func() { defer close(finished); finish() })
	select {
	case <-finished:
		return nil
	case <-detachedCh:
		containerEvent(x.events, rec, events.ActionExecDetach, map[string]string{"execID": e.id})
		return ErrDetached
	case <-ctx.Done():
		// the client went away; the process runs on, as with dockerd
		return ctx.Err()
	}
}

// failed records a process that could not start and writes the reason
// to the client's stream, as dockerd does. Its exit code is 126 whatever
// the reason (a missing command too: 127 is for a container's own command
// that cannot start), as dockerd reports it and the docker CLI exits.
func (x *execTable) failed(e *execProc, err error, stdout io.Writer) error {
	code := 126
	e.mu.Lock()
	e.exitCode, e.running, e.ended = &code, false, time.Now()
	e.mu.Unlock()
	close(e.done)
	if stdout != nil {
		_, _ = io.WriteString(stdout, "OCI runtime exec failed: "+err.Error()+"\r\n")
		return nil
	}
	return err
}

// execProcess builds the exec's OCI process from the container's own
// (capabilities, rlimits, apparmor...) with the exec's command, user,
// environment and working directory.
func execProcess(base []byte, rootfs string, cfg container.ExecCreateRequest) (*specs.Process, error) {
	p := &specs.Process{}
	if err := json.Unmarshal(base, p); err != nil {
		return nil, fmt.Errorf("read container process: %w", err)
	}
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	p.Env = mergeEnv(p.Env, cfg.Env)
	if cfg.Tty {
		p.Env = mergeEnv(p.Env, []string{"TERM=xterm"})
	}
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		u, err := oci.ResolveUser(rootfs, cfg.User, nil)
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	if cfg.Privileged {
		all := oci.ProbeHost().Capabilities
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return p, nil
}

// ExecResize resizes an exec's TTY.
func (s *Service) ExecResize(ctx context.Context, id string, height, width uint) error {
	e, err := s.execs.get(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	t := e.task
	e.mu.Unlock()
	if t == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec %s is not running", id))
	}
	return t.Resize(ctx, height, width)
}

// ExecInspect answers GET /exec/{id}/json.
func (s *Service) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	e, err := s.execs.get(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg := e.cfg
	priv := cfg.Privileged
	return &container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode,
		ProcessConfig: &container.ExecProcessConfig{Tty: cfg.Tty, Entrypoint: cfg.Cmd[0], Arguments: nonNil(cfg.Cmd[1:]), Privileged: &priv, User: cfg.User},
		OpenStdin:     cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr,
		CanRemove: !e.running && e.started, ContainerID: e.c.rec.ID, DetachKeys: []byte(cfg.DetachKeys), Pid: e.pid,
	}, nil
}

// finish marks a stopped container's execs as ended; call with c.mu held.
func (x *execTable) finish(c *ctr) {
	for _, e := range c.execs {
		e.mu.Lock()
		if e.running {
			code := 137
			e.running, e.exitCode, e.ended = false, &code, time.Now()
		}
		e.mu.Unlock()
	}
}

// prune forgets execs that ended long ago; call with x.mu and c.mu held.
func (x *execTable) prune(c *ctr) {
	for id, e := range c.execs {
		e.mu.Lock()
		old := !e.ended.IsZero() && time.Since(e.ended) > execRetention
		e.mu.Unlock()
		if old {
			delete(x.byID, id)
			delete(c.execs, id)
		}
	}
}

// forget drops every exec of a removed container.
func (x *execTable) forget(c *ctr) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id := range c.execs {
		delete(x.byID, id)
	}
}

// ids lists the container's execs, sorted. Every change of c.execs holds
// x.mu (and c.mu), so x.mu alone is enough to read it: inspect does not
// wait for an operation on the container.
func (x *execTable) ids(c *ctr) []string {
	x.mu.RLock()
	ids := make([]string, 0, len(c.execs))
	for id := range c.execs {
		ids = append(ids, id)
	}
	x.mu.RUnlock()
	sort.Strings(ids)
	return ids
}

// prepare reads what a process in c's container needs: the container's
// monitor (nil, with rec, when it is not running) and the process as
// runtime-spec JSON, the container's own with cfg's command, user,
// environment and directory.
func (x *execTable) prepare(c *ctr, cfg container.ExecCreateRequest) (task Task, rec *Record, process []byte, err error) {
	c.mu.Lock()
	task, rootfs, rec := c.task, c.rootfs, c.rec
	base, err := x.processBase(c)
	c.mu.Unlock()
	if task == nil || err != nil {
		return task, rec, nil, err
	}
	proc, err := execProcess(base, rootfs, cfg)
	if err != nil {
		return task, rec, nil, err
	}
	process, err = json.Marshal(proc)
	return task, rec, process, err
}

// processBase is the container's own OCI process as JSON, the base of every
// exec: kept from the start, or read once from the bundle after a daemon
// restart. Call with c.mu held.
func (x *execTable) processBase(c *ctr) ([]byte, error) {
	if c.process != nil {
		return c.process, nil
	}
	spec := filepath.Join(x.bundleDir(c.rec.ID), "config.json")
	b, err := os.ReadFile(spec)
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var bundle struct {
		Process json.RawMessage `json:"process"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil || bundle.Process == nil {
		return nil, fmt.Errorf("read container spec: no process in %s", spec)
	}
	c.process = bundle.Process
	return c.process, nil
}
