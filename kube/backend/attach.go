package backend

import (
	"context"
	"io"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/berthd/berth/internal/detachkeys"
	"github.com/berthd/berth/runtime"
)

// attaches are the terminals of running attachments, by container id, and
// the last size asked for each container (POST /containers/{id}/resize),
// which a terminal attached later starts with.
type attaches struct {
	mu   sync.Mutex
	ttys map[string]map[*AttachRun]chan remotecommand.TerminalSize
	size map[string]remotecommand.TerminalSize
}

// add registers a running terminal attachment and answers its size queue,
// holding the container's last size when there is one.
func (a *attaches) add(id string, r *AttachRun) chan remotecommand.TerminalSize {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ttys == nil {
		a.ttys = map[string]map[*AttachRun]chan remotecommand.TerminalSize{}
	}
	if a.ttys[id] == nil {
		a.ttys[id] = map[*AttachRun]chan remotecommand.TerminalSize{}
	}
	ch := make(chan remotecommand.TerminalSize, 1)
	if sz, ok := a.size[id]; ok {
		ch <- sz
	}
	a.ttys[id][r] = ch
	return ch
}

func (a *attaches) remove(id string, r *AttachRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.ttys[id], r)
	if len(a.ttys[id]) == 0 {
		delete(a.ttys, id)
	}
}

// resize records a container's terminal size and hands it to its running
// terminal attachments (the newest size wins in each queue).
func (a *attaches) resize(id string, sz remotecommand.TerminalSize) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.size == nil {
		a.size = map[string]remotecommand.TerminalSize{}
	}
	a.size[id] = sz
	for _, ch := range a.ttys[id] {
		select {
		case <-ch:
		default:
		}
		ch <- sz
	}
}

// forget drops a container's size when its pod goes away.
func (a *attaches) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.size, id)
}

// Attach accepts an attach to a container's process: pods/attach of its
// pod's main container through the Executor (remotecommand, as kubectl
// attach). stdin is attached when the container keeps it open (-i), the
// framing is the container's TTY. An attach to a container that does not
// run (docker run and start -a attach before the start) waits for its pod
// to run. logs=1 replays the pod's log first (pods/log). The detach keys
// (ctrl-p,ctrl-q unless named) end the attachment, not the container.
func (b *Backend) Attach(ctx context.Context, ref string, opts runtime.AttachOptions) (*AttachRun, error) {
	if _, ok := b.executor.(noExecutor); ok {
		return nil, notImplemented("attach without a REST config")
	}
	var p *corev1.Pod
	var id string
	if cp, err := b.lookup(ref); err == nil {
		p, id = cp, containerID(cp)
	} else if lid, l, ok := b.localFind(ref); ok {
		p, id = l.pod, lid
	} else {
		return nil, err
	}
	keys, err := detachSequence(opts.DetachKeys)
	if err != nil {
		return nil, err
	}
	c := mainContainer(p)
	return &AttachRun{b: b, id: id, pod: p, opts: opts, keys: keys, req: ExecRequest{
		Namespace: p.Namespace, Pod: p.Name, Container: c.Name, Attach: true, TTY: c.TTY,
		Stdin: opts.Stdin && c.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr && !c.TTY,
	}}, nil
}

// Resize sets the terminal size of a container's attachments (now, and of
// the ones attached later).
func (b *Backend) Resize(ctx context.Context, ref string, height, width uint) error {
	id := ""
	if p, err := b.lookup(ref); err == nil {
		id = containerID(p)
	} else if lid, _, ok := b.localFind(ref); ok {
		id = lid
	} else {
		return err
	}
	b.attaches.resize(id, remotecommand.TerminalSize{Height: uint16(height), Width: uint16(width)})
	return nil
}

// AttachRun is an attach accepted for a container (the router's
// AttachStream).
type AttachRun struct {
	b    *Backend
	id   string
	pod  *corev1.Pod
	opts runtime.AttachOptions
	keys []byte // the detach sequence
	req  ExecRequest
}

// TTY says how the router frames the stream: as the container's terminal.
func (r *AttachRun) TTY() bool { return r.req.TTY }

// Cancel gives up an attachment that was not run: nothing was started.
func (r *AttachRun) Cancel() {}

// Run replays the log (logs=1), waits until the container runs and streams
// pods/attach until its process ends or the client goes away. An attach
// without stdin to a container that was not running yet (docker run, start
// -a) streams the pod's log from its start instead, so that nothing the
// process wrote before an attach could reach the kubelet is lost; with
// stdin, that early output is not streamed (the log has it), as with
// kubectl attach.
func (r *AttachRun) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, ready func()) error {
	ready()
	if r.opts.Logs {
		r.replay(ctx, stdout, stderr)
	}
	if !r.opts.Stream {
		return nil
	}
	// wait for the process: running, or (a short one) already ended after
	// the attach began, which the informer may never have shown running
	_, wasRunning := r.b.inCluster(r.id)
	if wasRunning {
		st, _ := r.b.stateOf(r.id)
		wasRunning = st.status == container.StateRunning
	}
	left, running, ended := false, false, false
	err := r.b.waitUntil(ctx, func() bool {
		st, exists := r.b.stateOf(r.id)
		if !exists {
			return true // removed: nothing to attach to
		}
		_, inCluster := r.b.inCluster(r.id)
		left = left || st.status != container.StateExited && st.status != container.StateRemoving
		running = inCluster && st.status == container.StateRunning
		ended = inCluster && left && st.status == container.StateExited
		return running || ended
	})
	if err != nil || !running && !ended {
		return nil // the client went away, or the container was removed
	}
	if !r.req.Stdin && !wasRunning {
		// no input, and a process that started after the attach: its
		// whole output is in the pod's log, while pods/attach would miss
		// what it wrote before the attach reached the kubelet
		r.follow(ctx, stdout)
		return nil
	}
	if ended {
		return nil
	}
	var so remotecommand.StreamOptions
	so.Tty = r.req.TTY
	if r.req.Stdout && stdout != nil {
		so.Stdout = stdout
	}
	if r.req.Stderr && stderr != nil {
		so.Stderr = stderr
	}
	var detached <-chan struct{}
	if r.req.Stdin && stdin != nil {
		// the container's stdin stays open when the client detaches (the
		// pod's stdinOnce is false): only this attachment ends
		dr := detachkeys.NewReader(stdin, r.keys)
		so.Stdin, detached = dr, dr.Detached()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-detached:
				cancel()
			case <-ctx.Done():
			}
		}()
	} else if stdin != nil {
		go func() { _, _ = io.Copy(io.Discard, stdin) }()
	}
	req := r.req
	req.Stdin, req.Stdout, req.Stderr = so.Stdin != nil, so.Stdout != nil, so.Stderr != nil
	if !req.Stdin && !req.Stdout && !req.Stderr {
		// nothing to stream (pods/attach wants a stream): hold until the
		// process ends, as Docker's attach does
		_ = r.b.waitUntil(ctx, func() bool {
			p, ok := r.b.inCluster(r.id)
			return !ok || podState(p, r.b.now()).status != container.StateRunning
		})
		return nil
	}
	if req.TTY {
		done := make(chan struct{})
		defer close(done)
		so.TerminalSizeQueue = sizeQueue{sizes: r.b.attaches.add(r.id, r), done: done}
		defer r.b.attaches.remove(r.id, r)
	}
	if p, ok := r.b.inCluster(r.id); ok {
		r.b.event(p, events.ActionAttach, nil)
	}
	err = r.b.executor.Exec(ctx, req, so)
	select {
	case <-detached:
		if p, ok := r.b.inCluster(r.id); ok {
			r.b.event(p, events.ActionDetach, nil)
		}
		return runtime.ErrDetached
	default:
	}
	if _, exited := ExitCode(err); exited || ctx.Err() != nil {
		return nil
	}
	return err
}

// detachSequence is the client's detach keys, Docker's when it names none;
// keys Docker would not take are refused in its words.
func detachSequence(keys string) ([]byte, error) {
	if keys == "" {
		keys = detachkeys.Default
	}
	return detachkeys.Parse(keys)
}

// follow streams the pod's log from its start until the process ends:
// every line as stdout (the API merges the streams).
func (r *AttachRun) follow(ctx context.Context, stdout io.Writer) {
	if !r.opts.Stdout && !r.opts.Stderr || stdout == nil {
		return
	}
	ls, err := r.b.Logs(ctx, r.id, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1})
	if err != nil {
		return
	}
	defer ls.Cancel()
	if p, ok := r.b.inCluster(r.id); ok {
		r.b.event(p, events.ActionAttach, nil)
	}
	for l := range ls.Lines {
		if _, err := stdout.Write(l.Line); err != nil {
			return
		}
	}
}

// replay writes the log so far (attach logs=1).
func (r *AttachRun) replay(ctx context.Context, stdout, stderr io.Writer) {
	if _, ok := r.b.inCluster(r.id); !ok {
		return // no pod, no log
	}
	ls, err := r.b.Logs(ctx, r.id, runtime.LogsOptions{Stdout: r.opts.Stdout, Stderr: r.opts.Stderr, Tail: -1})
	if err != nil {
		return
	}
	defer ls.Cancel()
	for l := range ls.Lines {
		w := stdout
		if l.Stream == "stderr" && stderr != nil {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(l.Line); err != nil {
			return
		}
	}
}
