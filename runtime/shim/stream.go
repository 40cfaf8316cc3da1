package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/monitor"
	"github.com/berthd/berth/runtime/shim/proto"
)

// AttachOptions selects the streams of an attach. Nil fields are not
// attached. With a Terminal, all output arrives on Stdout.
type AttachOptions struct {
	monitor.Streams
	// OnAttached, if set, is called once the shim has registered the
	// client, before any output is delivered: output produced after it
	// returns is seen. berthd answers the API client's hijack there, so a
	// `docker run` that attaches then starts misses nothing.
	OnAttached func()
}

// Attach streams the container's output from now on to Stdout/Stderr, and
// Stdin to the container's stdin (if it has one: OpenStdin), until the
// output ends (the container exited), ctx is done, or Stdin ends in a way
// that ends the session: Stdin's EOF closes the container's stdin when
// StdinOnce is set without a Terminal (then the output goes on to its end);
// otherwise it ends the attach, as in Docker.
//
// Attach before Start sees all output. A slow reader is disconnected by the
// shim (after 1 MiB queued) rather than slowing the container.
//
// When Attach returns, a goroutine may still be blocked in Stdin.Read: it
// returns at the next Read; close the stdin source (e.g. the hijacked
// connection) to end it.
//
// Errors: nil when the output ended; ctx.Err(); ErrUnavailable; a write
// error of Stdout/Stderr.
func (c *Client) Attach(ctx context.Context, opts AttachOptions) error {
	req := proto.Request{Op: proto.OpAttach, Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil}
	conn, br, stop, err := c.dial(ctx, req, streamBufSize)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer stop()
	if _, err := c.readResponse(ctx, br); err != nil {
		return err
	}
	if opts.OnAttached != nil {
		opts.OnAttached()
	}
	if opts.Stdin != nil {
		safe.Go("attach input", func() { sendStdin(conn, opts.Stdin) })
	}
	_, err = copyFrames(br, opts.Stdout, opts.Stderr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func sendStdin(conn *net.UnixConn, r io.Reader) {
	if _, err := io.Copy(conn, r); err == nil {
		conn.CloseWrite() // end of input
	}
}

// copyFrames demultiplexes frames until EOF. It returns the exit code
// carried by a FrameExit (-1 if none).
func copyFrames(br *bufio.Reader, stdout, stderr io.Writer) (int, error) {
	for {
		typ, n, err := proto.ReadFrameHeader(br)
		if err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return -1, nil
			}
			return -1, err
		}
		var w io.Writer
		switch typ {
		case proto.FrameStdout:
			w = stdout
		case proto.FrameStderr:
			w = stderr
		case proto.FrameExit:
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return -1, err
			}
			code, err := strconv.Atoi(string(b))
			if err != nil {
				return -1, fmt.Errorf("bad exit frame %q: %w", b, errdefs.ErrUnknown)
			}
			return code, nil
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, br, int64(n)); err != nil {
			if err == io.EOF {
				// The shim closed mid-frame: it dropped a client too slow
				// to keep up (or died).
				err = fmt.Errorf("stream cut by the shim: %w", errdefs.ErrUnavailable)
			}
			return -1, err
		}
	}
}

// Exec is a started exec process, a child of the shim.
type Exec struct {
	c      *Client
	id     string
	pid    int
	direct bool
	conn   *net.UnixConn
	done   chan struct{}
	code   int
	err    error
	once   sync.Once
}

// Exec starts a process in the running container and streams its stdio
// until it exits (or Close). ctx bounds only the start. The process spec's
// terminal and consoleSize are set from cfg's Terminal and ConsoleSize.
//
// Errors: ErrConflict if the container is not running or ID is in use;
// ErrInvalidArgument for a missing ID or Process; *ProcessError when the
// runtime could not start it (ExitCode 126/127 as dockerd reports);
// ErrUnavailable; ctx.Err().
func (c *Client) Exec(ctx context.Context, cfg monitor.ExecConfig) (*Exec, error) {
	return c.exec(ctx, cfg, false)
}

// exec is Exec; runtimeExec starts the process with the OCI runtime (runc
// exec) even where the shim's faster path could, for the comparisons of
// the equivalence tests. A shim started with BERTH_EXEC_RUNC=1 in its
// environment always does.
func (c *Client) exec(ctx context.Context, cfg monitor.ExecConfig, runtimeExec bool) (*Exec, error) {
	st := cfg.Streams
	req := proto.Request{
		Op: proto.OpExec, ExecID: cfg.ID, Terminal: cfg.Terminal,
		Stdin: st.Stdin != nil, Stdout: st.Stdout != nil, Stderr: st.Stderr != nil,
		RuntimeExec: runtimeExec,
	}
	if len(cfg.ProcessJSON) == 0 {
		return nil, fmt.Errorf("exec %s: no process: %w", cfg.ID, errdefs.ErrInvalidArgument)
	}
	var size monitor.ConsoleSize
	if cfg.Terminal && cfg.ConsoleSize.Set() {
		size = cfg.ConsoleSize
		req.Height, req.Width = dims(size)
	}
	p, err := patchProcess(cfg.ProcessJSON, cfg.Terminal, size)
	if err != nil {
		return nil, err
	}
	req.Process = p
	conn, br, stop, err := c.dial(ctx, req, streamBufSize)
	if err != nil {
		return nil, err
	}
	resp, err := c.readResponse(ctx, br)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	e := &Exec{c: c, id: cfg.ID, pid: resp.Pid, direct: resp.Direct, conn: conn, done: make(chan struct{})}
	if st.Stdin != nil {
		safe.Go("exec input", func() { sendStdin(conn, st.Stdin) })
	}
	go func() {
		defer close(e.done)
		defer conn.Close()
		// what Wait reports if copying the output panics
		e.code, e.err = -1, fmt.Errorf("exec %s: stream ended by an internal error: %w", cfg.ID, errdefs.ErrUnknown)
		defer safe.Recover("stream of exec " + cfg.ID)
		code, err := copyFrames(br, st.Stdout, st.Stderr)
		e.err = nil
		switch {
		case err != nil:
			e.err = err
		case code < 0:
			e.err = fmt.Errorf("exec %s: stream ended without an exit status: %w", cfg.ID, errdefs.ErrUnavailable)
		}
		e.code = code
	}()
	return e, nil
}

// patchProcess makes the process spec agree with the exec's options:
// terminal as asked, and the console size, which runc applies before the
// process runs (a resize by the shim afterwards would race with it).
func patchProcess(process []byte, terminal bool, size monitor.ConsoleSize) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(process, &m); err != nil {
		return nil, fmt.Errorf("exec process: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	m["terminal"], _ = json.Marshal(terminal)
	if size.Set() {
		h, w := dims(size)
		m["consoleSize"], _ = json.Marshal(map[string]uint16{"height": h, "width": w})
	}
	return json.Marshal(m)
}

// Pid is the exec process's host pid.
func (e *Exec) Pid() int { return e.pid }

// Direct says whether the shim started the process itself (berth-nsexec)
// rather than through the OCI runtime.
func (e *Exec) Direct() bool { return e.direct }

// Wait waits for the process to exit (and its output to be delivered) and
// returns its exit code (128+signal if killed). Errors: ctx.Err();
// ErrUnavailable if the stream broke (the shim died, or Close was called);
// an output write error.
func (e *Exec) Wait(ctx context.Context) (int, error) {
	select {
	case <-e.done:
		return e.code, e.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Resize sets the size of the exec's terminal. Errors: ErrNotFound if it
// has exited; ErrInvalidArgument if it has no terminal; ErrUnavailable.
func (e *Exec) Resize(ctx context.Context, height, width uint) error {
	h, w := dims(monitor.ConsoleSize{height, width})
	_, err := e.c.call(ctx, proto.Request{Op: proto.OpResize, ExecID: e.id, Height: h, Width: w})
	return err
}

// Close stops streaming; the process keeps running (its output is then
// discarded). Wait returns at once after Close.
func (e *Exec) Close() error {
	e.once.Do(func() { e.conn.Close() })
	<-e.done
	return nil
}
