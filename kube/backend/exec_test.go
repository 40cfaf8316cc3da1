package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthd/berth/internal/detachkeys"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// fakeExecutor stands for pods/exec: it records the requests and runs
// each by run.
type fakeExecutor struct {
	mu   sync.Mutex
	reqs []ExecRequest
	run  func(req ExecRequest, so remotecommand.StreamOptions) error
}

func (f *fakeExecutor) Exec(ctx context.Context, req ExecRequest, so remotecommand.StreamOptions) error {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	run := f.run
	f.mu.Unlock()
	return run(req, so)
}

func (f *fakeExecutor) last() ExecRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

// execBackend is a synced backend over shop's pods (db-1 runs as 999:999
// in /data) with the fake executor.
func execBackend(t *testing.T, fx *fakeExecutor) *Backend {
	t.Helper()
	cs := fake.NewClientset()
	pods := shopPods()
	pods[0].Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(999)), RunAsGroup: ptr(int64(999))}
	pods[0].Spec.Containers[0].WorkingDir = "/data"
	for i := range pods {
		_, err := cs.CoreV1().Pods(pods[i].Namespace).Create(context.Background(), &pods[i], metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }, Exec: fx})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, b.Sync(ctx))
	return b
}

func TestExecCreateRefusesWhatPodsExecCannotExpress(t *testing.T) {
	b := execBackend(t, &fakeExecutor{})
	cmd := []string{"sh"}
	for _, tc := range []struct {
		name  string
		ref   string
		req   container.ExecCreateRequest
		check func(error) bool
		msg   string
	}{
		{"privileged", "shop-db-1", container.ExecCreateRequest{Cmd: cmd, Privileged: true}, errdefs.IsNotImplemented, "exec --privileged"},
		{"another user", "shop-db-1", container.ExecCreateRequest{Cmd: cmd, User: "root"}, errdefs.IsNotImplemented, "exec --user other than the container's"},
		{"env", "shop-db-1", container.ExecCreateRequest{Cmd: cmd, Env: []string{"A=1"}}, errdefs.IsNotImplemented, "exec --env"},
		{"another workdir", "shop-db-1", container.ExecCreateRequest{Cmd: cmd, WorkingDir: "/tmp"}, errdefs.IsNotImplemented, "exec --workdir"},
		{"detach keys Docker would not take", "shop-db-1", container.ExecCreateRequest{Cmd: cmd, DetachKeys: "ctrl-pq"}, errdefs.IsInvalidArgument, "Invalid detach keys (ctrl-pq) provided"},
		{"no command", "shop-db-1", container.ExecCreateRequest{}, errdefs.IsInvalidArgument, "No exec command specified"},
		{"exited", "shop-worker-2", container.ExecCreateRequest{Cmd: cmd}, errdefs.IsConflict, "is not running"},
		{"unknown", "nope", container.ExecCreateRequest{Cmd: cmd}, errdefs.IsNotFound, "No such container: nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.ExecCreate(context.Background(), tc.ref, tc.req)
			assert.Assert(t, tc.check(err), "%v", err)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	// the container's own user and directory are what pods/exec does
	_, err := b.ExecCreate(context.Background(), "shop-db-1", container.ExecCreateRequest{Cmd: cmd, User: "999:999", WorkingDir: "/data"})
	assert.NilError(t, err)

	nob, _ := newBackend(t, shopPods()...) // a fake clientset: no REST config
	_, err = nob.ExecCreate(context.Background(), "shop-db-1", container.ExecCreateRequest{Cmd: cmd})
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
}

// exitErr is what remotecommand returns for a non-zero exit.
func exitErr(code int) error {
	return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with non-zero exit code: %d", code), Code: code}
}

func TestExecStreamsAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		create     container.ExecCreateRequest
		stdin      string
		run        func(req ExecRequest, so remotecommand.StreamOptions) error
		wantReq    ExecRequest
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{
			name:   "exit 0 with both streams",
			create: container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, AttachStdout: true, AttachStderr: true},
			run: func(req ExecRequest, so remotecommand.StreamOptions) error {
				_, _ = io.WriteString(so.Stdout, "out\n")
				_, _ = io.WriteString(so.Stderr, "err\n")
				return nil
			},
			wantReq: ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, Stdout: true, Stderr: true},
			wantOut: "out\n", wantErrOut: "err\n", wantCode: 0,
		},
		{
			name:     "a non-zero exit is the exec's exit code",
			create:   container.ExecCreateRequest{Cmd: []string{"false"}, AttachStdout: true},
			run:      func(ExecRequest, remotecommand.StreamOptions) error { return exitErr(3) },
			wantReq:  ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"false"}, Stdout: true},
			wantCode: 3,
		},
		{
			name:   "stdin reaches the command",
			create: container.ExecCreateRequest{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true},
			stdin:  "hello\n",
			run: func(req ExecRequest, so remotecommand.StreamOptions) error {
				_, err := io.Copy(so.Stdout, so.Stdin)
				return err
			},
			wantReq: ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"cat"}, Stdin: true, Stdout: true},
			wantOut: "hello\n", wantCode: 0,
		},
		{
			name:   "tty: one stream, no stderr",
			create: container.ExecCreateRequest{Cmd: []string{"sh"}, Tty: true, AttachStdout: true, AttachStderr: true},
			run: func(req ExecRequest, so remotecommand.StreamOptions) error {
				if !so.Tty || so.Stderr != nil {
					return errors.New("not a tty stream")
				}
				_, _ = io.WriteString(so.Stdout, "# ")
				return exitErr(130)
			},
			wantReq: ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"sh"}, Stdout: true, TTY: true},
			wantOut: "# ", wantCode: 130,
		},
		{
			name:     "an exec that cannot run exits 126 with the reason",
			create:   container.ExecCreateRequest{Cmd: []string{"nope"}, AttachStdout: true},
			run:      func(ExecRequest, remotecommand.StreamOptions) error { return errors.New("pods \"db-1\" is forbidden") },
			wantReq:  ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"nope"}, Stdout: true},
			wantOut:  "exec failed: pods \"db-1\" is forbidden\r\n",
			wantCode: 126,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := &fakeExecutor{run: tc.run}
			b := execBackend(t, fx)
			ctx := context.Background()
			id, err := b.ExecCreate(ctx, "shop-db-1", tc.create)
			assert.NilError(t, err)
			run, err := b.ExecStart(ctx, id, container.ExecStartRequest{Tty: tc.create.Tty})
			assert.NilError(t, err)
			assert.Equal(t, run.TTY(), tc.create.Tty)
			var out, errOut bytes.Buffer
			var stderr io.Writer = &errOut
			if tc.create.Tty {
				stderr = nil // the router streams only stdout with a TTY
			}
			assert.NilError(t, run.Run(ctx, strings.NewReader(tc.stdin), &out, stderr))
			assert.DeepEqual(t, fx.last(), tc.wantReq)
			assert.Equal(t, out.String(), tc.wantOut)
			assert.Equal(t, errOut.String(), tc.wantErrOut)
			insp, err := b.ExecInspect(ctx, id)
			assert.NilError(t, err)
			assert.Assert(t, !insp.Running)
			assert.Assert(t, insp.ExitCode != nil)
			assert.Equal(t, *insp.ExitCode, tc.wantCode)
			assert.Equal(t, insp.ContainerID, containerID(&shopPods()[0]))

			_, err = b.ExecStart(ctx, id, container.ExecStartRequest{})
			assert.Assert(t, errdefs.IsConflict(err), "%v", err)
			assert.ErrorContains(t, err, "has already run")
		})
	}
}

func TestExecTTYSizeAndResize(t *testing.T) {
	sizes := make(chan remotecommand.TerminalSize)
	release := make(chan struct{})
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		for i := 0; i < 2; i++ {
			sizes <- *so.TerminalSizeQueue.Next()
		}
		<-release
		return nil
	}}
	b := execBackend(t, fx)
	ctx := context.Background()
	id, err := b.ExecCreate(ctx, "shop-db-1", container.ExecCreateRequest{Cmd: []string{"sh"}, Tty: true, AttachStdout: true, ConsoleSize: &[2]uint{10, 20}})
	assert.NilError(t, err)
	assert.Assert(t, errdefs.IsConflict(b.ExecResize(ctx, id, 1, 2)), "not running yet")
	run, err := b.ExecStart(ctx, id, container.ExecStartRequest{Tty: true, ConsoleSize: &[2]uint{24, 80}})
	assert.NilError(t, err)
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx, nil, io.Discard, nil) }()
	assert.Equal(t, <-sizes, remotecommand.TerminalSize{Height: 24, Width: 80}, "the start's size comes first")
	waitFor(t, "the exec to run", func() bool {
		insp, err := b.ExecInspect(ctx, id)
		return err == nil && insp.Running
	})
	assert.NilError(t, b.ExecResize(ctx, id, 50, 132))
	assert.Equal(t, <-sizes, remotecommand.TerminalSize{Height: 50, Width: 132})
	close(release)
	assert.NilError(t, <-done)
	assert.Assert(t, errdefs.IsConflict(b.ExecResize(ctx, id, 1, 2)), "ended")

	_, err = b.ExecInspect(ctx, "nope")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
}

func TestExecDetachedRunsWithoutTheClient(t *testing.T) {
	ran := make(chan ExecRequest, 1)
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		if so.Stdout == nil || so.Stdin != nil {
			return errors.New("a detached exec has an output stream only")
		}
		ran <- req
		return exitErr(7)
	}}
	b := execBackend(t, fx)
	ctx := context.Background()
	id, err := b.ExecCreate(ctx, "shop-db-1", container.ExecCreateRequest{Cmd: []string{"touch", "/x"}, AttachStdout: true, AttachStdin: true})
	assert.NilError(t, err)
	run, err := b.ExecStart(ctx, id, container.ExecStartRequest{Detach: true})
	assert.NilError(t, err)
	assert.NilError(t, run.Run(ctx, nil, nil, nil))
	req := <-ran
	assert.Assert(t, req.Stdout && !req.Stdin && !req.Stderr, "%+v", req)
	waitFor(t, "the exit code", func() bool {
		insp, err := b.ExecInspect(ctx, id)
		return err == nil && insp.ExitCode != nil && *insp.ExitCode == 7
	})
}

// The detach keys end the client's stream, not the exec: the command got
// what came before them, runs on with its input open, and its exit code
// is recorded when it ends; an input the client closes still ends.
func TestExecDetachKeysLeaveItRunning(t *testing.T) {
	got, release := make(chan string, 1), make(chan struct{})
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		buf := make([]byte, 2)
		_, err := io.ReadFull(so.Stdin, buf)
		got <- string(buf)
		if err != nil {
			return err
		}
		// remotecommand copies the input on as long as the exec runs
		go func() { _, _ = io.Copy(io.Discard, so.Stdin) }()
		<-release
		return exitErr(4)
	}}
	b := execBackend(t, fx)
	ctx := context.Background()
	for _, keys := range []string{"", "ctrl-x,y"} {
		seq := "\x10\x11"
		if keys != "" {
			seq = "\x18y"
		}
		id, err := b.ExecCreate(ctx, "shop-db-1", container.ExecCreateRequest{Cmd: []string{"sh"}, AttachStdin: true, AttachStdout: true, DetachKeys: keys})
		assert.NilError(t, err)
		run, err := b.ExecStart(ctx, id, container.ExecStartRequest{})
		assert.NilError(t, err)
		err = run.Run(ctx, strings.NewReader("ls"+seq+"never sent"), io.Discard, io.Discard)
		assert.Assert(t, errors.Is(err, runtime.ErrDetached), "%v", err)
		assert.Equal(t, <-got, "ls")
		insp, err := b.ExecInspect(ctx, id)
		assert.NilError(t, err)
		assert.Assert(t, insp.Running, "the exec runs on after the detach")
		release <- struct{}{}
		waitFor(t, "the exit code", func() bool {
			insp, err := b.ExecInspect(ctx, id)
			return err == nil && insp.ExitCode != nil && *insp.ExitCode == 4
		})
	}
}

// After the detach keys the exec's input blocks until the exec ends (the
// process keeps its stdin); an input the client closed ends at once.
func TestHeldOpenOnlyAfterADetach(t *testing.T) {
	done := make(chan struct{})
	dr := detachkeys.NewReader(strings.NewReader("a"), []byte{16, 17})
	h := heldOpen{r: dr, detached: dr.Detached(), done: done}
	b, err := io.ReadAll(h)
	assert.NilError(t, err, "no detach: the client's end is the input's end")
	assert.Equal(t, string(b), "a")

	dr = detachkeys.NewReader(strings.NewReader("a\x10\x11"), []byte{16, 17})
	h = heldOpen{r: dr, detached: dr.Detached(), done: done}
	var closed atomic.Bool
	read := make(chan bool)
	go func() {
		_, _ = io.ReadAll(h)
		read <- closed.Load()
	}()
	closed.Store(true)
	close(done)
	assert.Assert(t, <-read, "the input ended before the exec did")
}

func TestExecsGoWithTheirPod(t *testing.T) {
	fx := &fakeExecutor{run: func(ExecRequest, remotecommand.StreamOptions) error { return nil }}
	cs := fake.NewClientset()
	db, worker := shopPods()[0], shopPods()[1]
	for _, p := range []corev1.Pod{db, worker} {
		_, err := cs.CoreV1().Pods(p.Namespace).Create(context.Background(), &p, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }, Exec: fx})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assert.NilError(t, b.Sync(ctx))
	dbExec, err := b.ExecCreate(ctx, "shop-db-1", container.ExecCreateRequest{Cmd: []string{"true"}, AttachStdout: true})
	assert.NilError(t, err)
	workerExec, err := b.ExecCreate(ctx, "shop-worker-1", container.ExecCreateRequest{Cmd: []string{"true"}, AttachStdout: true})
	assert.NilError(t, err)
	// its container stops between the create and the start: 409 at the start
	stopped := db.DeepCopy()
	stopped.Status.ContainerStatuses[0].State = exited(0, t0)
	_, err = cs.CoreV1().Pods("shop").UpdateStatus(ctx, stopped, metav1.UpdateOptions{})
	assert.NilError(t, err)
	waitFor(t, "the informer to see db stopped", func() bool {
		p, ok := b.inCluster(containerID(&db))
		return ok && podState(p, t0).status == container.StateExited
	})
	_, err = b.ExecStart(ctx, dbExec, container.ExecStartRequest{})
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "is not running")

	assert.NilError(t, cs.CoreV1().Pods("shop").Delete(ctx, db.Name, metav1.DeleteOptions{}))
	waitFor(t, "the db exec to go", func() bool {
		_, err := b.ExecInspect(ctx, dbExec)
		return errdefs.IsNotFound(err)
	})
	_, err = b.ExecInspect(ctx, workerExec)
	assert.NilError(t, err, "another container's exec stays")
}
