package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/berthd/berth/internal/detachkeys"
	"github.com/berthd/berth/internal/safe"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// AttachOptions are the options of POST /containers/{id}/attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	DetachKeys            string
}

// Attachment is an attach request accepted for a container; Run streams it.
type Attachment struct {
	Tty    bool
	at     *attacher
	c      *ctr
	opts   AttachOptions
	keys   []byte
	cancel context.CancelFunc
	ctx    context.Context
	// for pending attachments: connected gets the monitor's wait function
	connected chan func() error
	failed    chan error
	streams   Streams
}

// ErrDetached ends an attach or exec stream when the client typed the
// detach keys; the container keeps running.
var ErrDetached = errors.New("detached")

// attacher runs attach streams (docker attach, start -a). It needs the
// events sink and a replayer of the log so far (logs=1); the monitor to
// stream from comes with the container, and a stream to a container that
// is not running waits for its next start (ctr.connectPending).
type attacher struct {
	events Publisher
	logs   logReplayer
}

// logReplayer writes a container's log so far (logReader.replay).
type logReplayer interface {
	replay(ctx context.Context, rec *Record, stdout, stderr io.Writer) error
}

func newAttacher(events Publisher, logs logReplayer) *attacher {
	return &attacher{events: events, logs: logs}
}

// Attach checks that the container can be attached to. The caller then
// takes over the connection and calls Run.
func (s *Service) Attach(ctx context.Context, name string, opts AttachOptions) (*Attachment, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.attaches.open(ctx, c, name, opts)
}

func (at *attacher) open(ctx context.Context, c *ctr, name string, opts AttachOptions) (*Attachment, error) {
	keys := opts.DetachKeys
	if keys == "" {
		keys = detachkeys.Default
	}
	seq, err := detachkeys.Parse(keys)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// As dockerd: a stream to a container that is not running waits for
	// its next start (docker start -a attaches, then starts); one that is
	// restarting waits too (dockerd refuses it, a race for clients that
	// attach at every start event).
	if c.rec.State.Status == container.StatePaused {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before attach", name))
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Attachment{Tty: c.rec.Config.Tty, at: at, c: c, opts: opts, keys: seq, ctx: actx, cancel: cancel,
		connected: make(chan func() error, 1), failed: make(chan error, 1)}, nil
}

// Cancel abandons an attachment that was not run.
func (a *Attachment) Cancel() { a.cancel() }

// Run streams until the container's output ends, the client detaches or
// goes away. stdin may be nil. ready is called once, before any output, as
// soon as the attachment is registered (a container started after that
// point has all its output streamed); an error returned before ready was
// called means nothing was streamed.
func (a *Attachment) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, ready func()) error {
	defer a.cancel()
	// output waits for the answer: the monitor may deliver some as soon as
	// the attachment is registered, before ready has been called
	answered := make(chan struct{})
	readyOnce := sync.OnceFunc(func() { ready(); close(answered) })
	c, rec := a.c, a.c.rec
	if a.Tty {
		stderr = stdout
	}
	if !a.opts.Stdout {
		stdout = nil
	}
	if !a.opts.Stderr {
		stderr = nil
	}
	stdout, stderr = gate(stdout, answered), gate(stderr, answered)
	if !a.opts.Stream {
		if a.opts.Logs {
			readyOnce()
			if err := a.at.logs.replay(a.ctx, rec, stdout, stderr); err != nil {
				return err
			}
		}
		readyOnce()
		return nil
	}
	var detached <-chan struct{}
	if a.opts.Stdin && stdin != nil && rec.Config.OpenStdin {
		dr := detachkeys.NewReader(stdin, a.keys)
		detached = dr.Detached()
		a.streams.Stdin = dr
	} else if stdin != nil {
		// nothing to forward; drain what the client sends
		safe.Go("drain attach input", func() { _, _ = io.Copy(io.Discard, stdin) })
	}
	// the stream's output follows the log's
	replayed := make(chan struct{})
	a.streams.Stdout, a.streams.Stderr = gate(stdout, replayed), gate(stderr, replayed)

	c.mu.Lock()
	task := c.task
	if task == nil {
		// waits for the next start, from before the answer: a client
		// that starts the container as soon as it has the answer (docker
		// start -a, docker-py's attach_socket then start) gets all of the
		// run's output, even when the container prints and exits at once
		c.pendingAttach = append(c.pendingAttach, a)
	}
	c.mu.Unlock()
	if a.opts.Logs {
		readyOnce()
		if err := a.at.logs.replay(a.ctx, rec, stdout, stderr); err != nil {
			if task == nil {
				c.dropPending(a)
			}
			return err
		}
	}
	close(replayed)
	var wait func() error
	if task != nil {
		w, err := task.Attach(a.ctx, a.streams)
		if err != nil {
			return err
		}
		wait = w
		readyOnce()
	} else {
		readyOnce()
		select {
		case wait = <-a.connected:
		case err := <-a.failed:
			return err
		case <-a.ctx.Done():
			c.dropPending(a)
			return a.ctx.Err()
		case <-ctx.Done():
			c.dropPending(a)
			return ctx.Err()
		}
	}
	containerEvent(a.at.events, rec, events.ActionAttach, nil)
	done := make(chan error, 1)
	safe.Go("attach to "+short(rec.ID), func() {
		err := errors.New("attach stream ended by a panic")
		defer func() { done <- err }()
		err = wait()
	})
	select {
	case err := <-done:
		return err
	case <-detached:
		a.cancel()
		<-done
		containerEvent(a.at.events, rec, events.ActionDetach, nil)
		return ErrDetached
	case <-ctx.Done():
		// the client went away: end the monitor's stream now rather than
		// at the container's next output
		a.cancel()
		<-done
		return ctx.Err()
	}
}

// gatedWriter holds writes until open is closed.
type gatedWriter struct {
	w    io.Writer
	open <-chan struct{}
}

func gate(w io.Writer, open <-chan struct{}) io.Writer {
	if w == nil {
		return nil
	}
	return gatedWriter{w: w, open: open}
}

func (g gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.w.Write(p)
}

// connectPending hands the attachments waiting for this start to the new
// monitor, before the process runs, so they miss no output; call with
// c.mu held.
func (c *ctr) connectPending(task Task) {
	pending := c.pendingAttach
	c.pendingAttach = nil
	for _, a := range pending {
		wait, err := task.Attach(a.ctx, a.streams)
		if err != nil {
			a.failed <- err
			continue
		}
		a.connected <- wait
	}
}

// failPending ends attachments waiting for a start that failed (err), or
// for a container that was removed (nil: their output has ended); call
// with c.mu held.
func (c *ctr) failPending(err error) {
	for _, a := range c.pendingAttach {
		a.failed <- err
	}
	c.pendingAttach = nil
}

func (c *ctr) dropPending(a *Attachment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pendingAttach {
		if p == a {
			c.pendingAttach = append(c.pendingAttach[:i], c.pendingAttach[i+1:]...)
			return
		}
	}
}

// Resize changes the TTY size of a running container (a no-op without TTY).
func (s *Service) Resize(ctx context.Context, name string, height, width uint) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if task == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.rec.ID))
	}
	return task.Resize(ctx, height, width)
}
