// Package shim is berthd's side of berth-shim, the per-container monitor
// that outlives berthd: it launches a shim (which creates the container with
// the OCI runtime), reconnects to one after a restart, and drives it: start,
// attach, resize, kill, exec, wait. The wire protocol is in package proto;
// the shim itself is cmd/berth-shim. Monitors is the container runtime's
// view of it (package monitor's interfaces, implemented here).
//
// A Client holds no connection: each call opens its own to
// <state>/shim.sock, so a Client costs nothing while idle and needs no
// Close beyond symmetry.
//
// Errors are errdefs classes: ErrUnavailable when the shim is gone (use
// ReadExit), ErrConflict for a request the container's state refuses,
// ErrNotFound for an unknown exec, ErrInvalidArgument for bad input, and a
// *ProcessError (ErrInvalidArgument for 126/127, ErrUnknown otherwise) when
// the OCI runtime could not start a process.
package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/runtime/monitor"
	"github.com/berthd/berth/runtime/shim/proto"
)

// Config is what Launch needs: the shim's own configuration (proto.Config,
// which Launch writes to the state directory for the shim to read: the
// container, its bundle, its log, its OCI runtime, its stdio and console
// size) and where and how to start the shim.
type Config struct {
	proto.Config
	StateDir string // the shim's directory; its path + "/shim.sock" must fit a unix socket (107 bytes)
	// ShimBinary is the path of berth-shim; default "berth-shim" on $PATH.
	ShimBinary string
	// ShimName is the shim's argv[0] when ShimBinary is a variant of it
	// (berth-shim-remote), so that it is found by name as every monitor is.
	ShimName string
}

// exitStatus is the status the shim reported.
func exitStatus(e proto.Exit) monitor.ExitStatus {
	return monitor.ExitStatus{Code: e.ExitCode, ExitedAt: e.ExitedAt, OOMKilled: e.OOMKilled, LogDropped: e.LogDropped}
}

// dims is a console size as the protocol carries it.
func dims(s monitor.ConsoleSize) (height, width uint16) {
	return uint16(min(s[0], math.MaxUint16)), uint16(min(s[1], math.MaxUint16))
}

// State is the shim's view of the container.
type State struct {
	Pid     int
	ShimPid int
	Status  string              // "created", "running", "stopped"
	Exit    *monitor.ExitStatus // when stopped
}

// ProcessError is the OCI runtime's refusal to start a process (the init at
// Launch, or an exec), with the exit code the shim classified (127 not found,
// 126 not executable, 128 otherwise): see proto.ProcessError.
type ProcessError = proto.ProcessError

// Client talks to one shim.
type Client struct {
	dir     string
	sock    string
	pid     int
	shimPid int
}

// Pid is the container init's pid in the host pid namespace.
func (c *Client) Pid() int { return c.pid }

// ShimPid is the shim process's pid.
func (c *Client) ShimPid() int { return c.shimPid }

// StateDir is the shim's state directory.
func (c *Client) StateDir() string { return c.dir }

// Close releases the Client. It holds no resources; calls in flight are
// ended by their contexts.
func (c *Client) Close() error { return nil }

// Connect connects to the shim of stateDir, e.g. after berthd restarted. It
// returns ErrUnavailable if no shim serves there (it exited: see ReadExit).
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	c, _, err := connectState(ctx, stateDir)
	return c, err
}

// connectState is Connect that also returns the state the shim answered
// with: one round trip to a shim that may wait for a CPU (a daemon restart
// makes a thousand of them).
func connectState(ctx context.Context, stateDir string) (*Client, State, error) {
	c := &Client{dir: stateDir, sock: filepath.Join(stateDir, proto.SocketFile)}
	st, err := c.State(ctx)
	if err != nil {
		return nil, State{}, err
	}
	c.pid, c.shimPid = st.Pid, st.ShimPid
	return c, st, nil
}

// ReadExit reads the exit status a shim recorded in stateDir. ok is false
// if there is none (the container has not exited, or its shim died first).
func ReadExit(stateDir string) (st monitor.ExitStatus, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(stateDir, proto.ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return monitor.ExitStatus{}, false, nil
	}
	if err != nil {
		return monitor.ExitStatus{}, false, err
	}
	var e proto.Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return monitor.ExitStatus{}, false, fmt.Errorf("%s: %w", proto.ExitFile, err)
	}
	return exitStatus(e), true, nil
}

// State returns the container's state. Errors: ErrUnavailable.
func (c *Client) State(ctx context.Context) (State, error) {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpState})
	if err != nil {
		return State{}, err
	}
	st := State{Pid: resp.Pid, ShimPid: resp.ShimPid, Status: resp.Status}
	if resp.Exit != nil {
		e := exitStatus(*resp.Exit)
		st.Exit = &e
	}
	return st, nil
}

// Start starts the created container (runc start) and returns once it runs.
// Errors: ErrConflict if it is not in the created state; ErrUnavailable; the
// runtime's error (ErrUnknown) otherwise.
func (c *Client) Start(ctx context.Context) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpStart})
	return err
}

// Kill sends sig to the container's init process. The shim does it, while
// the init is its unreaped child, so a recycled pid is never signalled.
// Errors: ErrConflict if the container is not running (or created);
// ErrInvalidArgument for a bad signal; ErrUnavailable.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpKill, Signal: int(sig)})
	return err
}

// Resize sets the size of the container's terminal. Errors:
// ErrInvalidArgument if it has none or the size is zero; ErrConflict if it
// exited; ErrUnavailable.
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpResize, Height: height, Width: width})
	return err
}

// Wait blocks until the container has exited and returns its status.
// Errors: ctx.Err(); ErrUnavailable if the shim is gone (see ReadExit).
func (c *Client) Wait(ctx context.Context) (monitor.ExitStatus, error) {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpWait})
	if err != nil {
		return monitor.ExitStatus{}, err
	}
	if resp.Exit == nil {
		return monitor.ExitStatus{}, fmt.Errorf("shim answered wait without a status: %w", errdefs.ErrUnknown)
	}
	return exitStatus(*resp.Exit), nil
}

// Release tells the shim of an exited container that berthd has its status:
// the shim exits now instead of after its grace period. Errors: ErrConflict
// if the container still runs; ErrUnavailable (it has already gone).
func (c *Client) Release(ctx context.Context) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpRelease})
	return err
}

// dial opens a connection and sends req. ctx bounds the dial and, through
// the returned stop function's counterpart, the whole exchange: the
// connection is closed when ctx is done.
func (c *Client) dial(ctx context.Context, req proto.Request, bufSize int) (*net.UnixConn, *bufio.Reader, func() bool, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, unavailable(c.dir, err)
	}
	conn := nc.(*net.UnixConn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	req.V = proto.Version
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		stop()
		conn.Close()
		return nil, nil, nil, c.connErr(ctx, err)
	}
	return conn, bufio.NewReaderSize(conn, bufSize), stop, nil
}

// readResponse reads the response line and turns an error answer into an
// errdefs-classed error.
func (c *Client) readResponse(ctx context.Context, br *bufio.Reader) (proto.Response, error) {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return proto.Response{}, c.connErr(ctx, err)
	}
	var resp proto.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return proto.Response{}, fmt.Errorf("shim %s: bad response (%v): %w", c.dir, err, errdefs.ErrUnknown)
	}
	if resp.Error != "" {
		return resp, responseError(resp)
	}
	return resp, nil
}

func responseError(resp proto.Response) error {
	var class error
	switch resp.Kind {
	case proto.KindProcess:
		return &ProcessError{Message: resp.Error, ExitCode: resp.ExitCode}
	case proto.KindNotFound:
		class = errdefs.ErrNotFound
	case proto.KindConflict:
		class = errdefs.ErrConflict
	case proto.KindInvalid:
		class = errdefs.ErrInvalidArgument
	case proto.KindUnavailable:
		class = errdefs.ErrUnavailable
	default:
		class = errdefs.ErrUnknown
	}
	return fmt.Errorf("%s: %w", resp.Error, class)
}

func (c *Client) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return unavailable(c.dir, err)
}

func unavailable(dir string, err error) error {
	return fmt.Errorf("shim of %s is gone (%v): %w", dir, err, errdefs.ErrUnavailable)
}

// Read buffers: a call's answer is one short line, and a Wait's connection
// is held for the container's life, one per running container (with 4 KB
// buffers, 0.8 MB of berthd's heap for 200 containers); a longer line is
// read whole all the same. A stream's buffer carries output.
const (
	callBufSize   = 256
	streamBufSize = 4096
)

// call is a request with a one-line answer.
func (c *Client) call(ctx context.Context, req proto.Request) (proto.Response, error) {
	conn, br, stop, err := c.dial(ctx, req, callBufSize)
	if err != nil {
		return proto.Response{}, err
	}
	defer conn.Close()
	defer stop()
	return c.readResponse(ctx, br)
}
