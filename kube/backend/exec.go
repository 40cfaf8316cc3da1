package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/berthd/berth/internal/detachkeys"
	"github.com/berthd/berth/internal/dropwriter"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"
)

// execs are the execs created on this backend, by id. pods/exec has no
// exec object: an exec lives in berthd's memory, created by ExecCreate and
// run by ExecStart through the Executor.
type execs struct {
	mu   sync.Mutex
	byID map[string]*kexec
}

// kexec is one exec.
type kexec struct {
	id, containerID string
	req             ExecRequest
	cfg             container.ExecCreateRequest
	pod             *corev1.Pod // for its events

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	sizes    chan remotecommand.TerminalSize // resizes of a running TTY exec
	done     chan struct{}                   // closed when it ended
}

// ExecCreate checks what pods/exec can run and records the exec. pods/exec
// runs the command as the container's user, in its working directory, with
// its environment and capabilities: an exec that asks for another user,
// directory, more environment or privileges is refused (501) rather than
// run otherwise.
func (b *Backend) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	p, err := b.lookup(ref)
	if err != nil {
		if id, _, ok := b.localFind(ref); ok {
			return "", execNotRunning(id)
		}
		return "", err
	}
	if _, ok := b.executor.(noExecutor); ok {
		return "", notImplemented("exec without a REST config")
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	c := mainContainer(p)
	if err := execRefused(c, req); err != nil {
		return "", err
	}
	if podState(p, b.now()).status != container.StateRunning {
		return "", execNotRunning(containerID(p))
	}
	id, err := newExecID()
	if err != nil {
		return "", err
	}
	e := &kexec{
		id: id, containerID: containerID(p), cfg: req, pod: p, done: make(chan struct{}),
		req: ExecRequest{
			Namespace: p.Namespace, Pod: p.Name, Container: c.Name, Cmd: req.Cmd,
			Stdin: req.AttachStdin, Stdout: req.AttachStdout, Stderr: req.AttachStderr && !req.Tty, TTY: req.Tty,
		},
	}
	b.execs.mu.Lock()
	b.execs.byID[id] = e
	b.execs.mu.Unlock()
	b.event(p, events.ActionExecCreate, map[string]string{"execID": id})
	return id, nil
}

// execRefused says which of the exec's options pods/exec cannot express.
func execRefused(c corev1.Container, req container.ExecCreateRequest) error {
	switch {
	case req.Privileged:
		return notImplemented("exec --privileged (an exec runs with its container's privileges)")
	case req.User != "" && req.User != containerUser(c):
		return notImplemented("exec --user other than the container's (an exec runs as its container's user)")
	case len(req.Env) > 0:
		return notImplemented("exec --env (an exec runs with its container's environment)")
	case req.WorkingDir != "" && req.WorkingDir != c.WorkingDir:
		return notImplemented("exec --workdir other than the container's (an exec runs in its container's working directory)")
	}
	_, err := detachSequence(req.DetachKeys)
	return err
}

// containerUser is the container's user as Docker writes it (uid[:gid]), ""
// when the pod does not set one.
func containerUser(c corev1.Container) string {
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil {
		return ""
	}
	u := strconv.FormatInt(*sc.RunAsUser, 10)
	if sc.RunAsGroup != nil {
		u += ":" + strconv.FormatInt(*sc.RunAsGroup, 10)
	}
	return u
}

func execNotRunning(id string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", id))
}

func newExecID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// forgetExecs drops a container's execs when its pod goes away, as dockerd
// drops a container's execs when it stops (the map would grow otherwise).
func (b *Backend) forgetExecs(containerID string) {
	b.execs.mu.Lock()
	defer b.execs.mu.Unlock()
	for id, e := range b.execs.byID {
		if e.containerID == containerID {
			delete(b.execs.byID, id)
		}
	}
}

func (b *Backend) exec(id string) (*kexec, error) {
	b.execs.mu.Lock()
	defer b.execs.mu.Unlock()
	if e, ok := b.execs.byID[id]; ok {
		return e, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
}

// ExecStart checks that the exec can start; the router then takes over the
// connection and calls Run.
func (b *Backend) ExecStart(ctx context.Context, id string, req container.ExecStartRequest) (*ExecRun, error) {
	e, err := b.exec(id)
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
	if p, ok := b.inCluster(e.containerID); !ok || podState(p, b.now()).status != container.StateRunning {
		return nil, execNotRunning(e.containerID)
	}
	e.started = true
	return &ExecRun{b: b, e: e, tty: req.Tty, size: req.ConsoleSize}, nil
}

// ExecResize resizes a running TTY exec's terminal.
func (b *Backend) ExecResize(ctx context.Context, id string, height, width uint) error {
	e, err := b.exec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec %s is not running", id))
	}
	if e.sizes == nil {
		return nil // no terminal: nothing to resize (dockerd ignores it too)
	}
	sz := remotecommand.TerminalSize{Width: uint16(width), Height: uint16(height)}
	select {
	case e.sizes <- sz:
	default: // the queue holds an older size: the newest wins
		select {
		case <-e.sizes:
		default:
		}
		e.sizes <- sz
	}
	return nil
}

// ExecInspect answers GET /exec/{id}/json. pods/exec shows no process: Pid
// is 0.
func (b *Backend) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	e, err := b.exec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg := e.cfg
	priv := false
	args := append([]string{}, cfg.Cmd[1:]...)
	return &container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode,
		ProcessConfig: &container.ExecProcessConfig{Tty: cfg.Tty, Entrypoint: cfg.Cmd[0], Arguments: args, Privileged: &priv, User: cfg.User},
		OpenStdin:     cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr,
		CanRemove: !e.running && e.started, ContainerID: e.containerID,
	}, nil
}

// ExecRun is an exec accepted for starting (the router's ExecStream).
type ExecRun struct {
	b    *Backend
	e    *kexec
	tty  bool
	size *[2]uint // the start's console size (height, width), else the create's
}

// TTY says how the router frames the stream: as the start asked.
func (r *ExecRun) TTY() bool { return r.tty }

// Cancel gives up an exec that was not run.
func (r *ExecRun) Cancel() {
	r.e.mu.Lock()
	r.e.started = false
	r.e.mu.Unlock()
}

// Run streams the exec through the Executor until it ends; with nil streams
// (a detached exec) it returns at once. A client that goes away does not
// end the exec: its output is dropped, and its exit code still recorded.
// An exec that could not run exits 126, with the reason on its output, as
// dockerd reports an exec that failed to start.
func (r *ExecRun) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	e := r.e
	detached := stdin == nil && stdout == nil && stderr == nil
	var detachedCh <-chan struct{}
	var so remotecommand.StreamOptions
	so.Tty = e.req.TTY
	if !detached {
		stdout, stderr = dropwriter.New(stdout), dropwriter.New(stderr)
		if e.req.Stdout {
			so.Stdout = stdout
		}
		if e.req.Stderr {
			so.Stderr = stderr
		}
		if e.req.Stdin && stdin != nil {
			keys, _ := detachSequence(e.cfg.DetachKeys)
			dr := detachkeys.NewReader(stdin, keys)
			// after the detach keys the exec's input stays open (pods/exec
			// would close the process's stdin at the reader's end): it
			// blocks until the exec ends
			so.Stdin, detachedCh = heldOpen{r: dr, detached: dr.Detached(), done: e.done}, dr.Detached()
		} else if stdin != nil {
			go func() { _, _ = io.Copy(io.Discard, stdin) }()
		}
	}
	if detached {
		so.Stdout = io.Discard // pods/exec wants a stream
	}
	// the request asks for the streams there are (the kubelet waits for
	// each it was asked for)
	req := e.req
	req.Stdin, req.Stdout, req.Stderr = so.Stdin != nil, so.Stdout != nil, so.Stderr != nil
	var sizes chan remotecommand.TerminalSize
	if req.TTY {
		sizes = make(chan remotecommand.TerminalSize, 1)
		size := e.cfg.ConsoleSize
		if r.size != nil {
			size = r.size
		}
		if size != nil {
			sizes <- remotecommand.TerminalSize{Height: uint16(size[0]), Width: uint16(size[1])}
		}
		so.TerminalSizeQueue = sizeQueue{sizes: sizes, done: e.done}
	}
	e.mu.Lock()
	e.running, e.sizes = true, sizes
	e.mu.Unlock()
	r.b.event(e.pod, events.Action(string(events.ActionExecStart)+": "+strings.Join(e.cfg.Cmd, " ")), map[string]string{"execID": e.id})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := r.b.executor.Exec(context.WithoutCancel(ctx), req, so)
		code, ok := ExitCode(err)
		if !ok {
			code = 126
			if so.Stdout != nil {
				_, _ = io.WriteString(so.Stdout, "exec failed: "+err.Error()+"\r\n")
			}
		}
		e.mu.Lock()
		e.running, e.exitCode, e.sizes = false, &code, nil
		e.mu.Unlock()
		close(e.done)
		r.b.event(e.pod, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
	}()
	if detached {
		return nil
	}
	select {
	case <-finished:
		return nil
	case <-detachedCh:
		r.b.event(e.pod, events.ActionExecDetach, map[string]string{"execID": e.id})
		return runtime.ErrDetached // the exec runs on
	case <-ctx.Done():
		return ctx.Err() // the client went away; the exec runs on
	}
}

// heldOpen reads r; once r ended because the client detached, it blocks
// until done instead of reporting the end (an input the client closed
// still ends).
type heldOpen struct {
	r        io.Reader
	detached <-chan struct{}
	done     <-chan struct{}
}

func (h heldOpen) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err == io.EOF && n == 0 {
		select {
		case <-h.detached:
			<-h.done
		default:
		}
	}
	return n, err
}

// sizeQueue hands remotecommand the terminal's sizes until the exec ends.
type sizeQueue struct {
	sizes <-chan remotecommand.TerminalSize
	done  <-chan struct{}
}

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case sz := <-q.sizes:
		return &sz
	case <-q.done:
		return nil
	}
}
