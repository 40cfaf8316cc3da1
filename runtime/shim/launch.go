package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/runtime/shim/proto"
)

// Launch starts a shim for cfg and returns once the container is created
// (runc create succeeded; the init waits for Start) or could not be. On
// failure nothing is left behind: no shim process, no runtime state.
//
// Errors: ErrInvalidArgument for an incomplete Config or a state directory
// too long for a unix socket; *ProcessError when the runtime refused to
// create the init (its text verbatim: exec: "x": executable file not found
// in $PATH); ctx.Err() if ctx ends first (the shim then cleans up by
// itself); ErrUnknown for other failures.
func Launch(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	p, err := Spawn(cfg.StateDir, cfg.ShimBinary, cfg.ShimName)
	if err != nil {
		return nil, err
	}
	return p.Launch(ctx, cfg)
}

// complete checks cfg and makes its paths absolute.
func (cfg *Config) complete() error {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.StateDir == "" || (cfg.LogPath == "" && cfg.Log == nil) {
		return fmt.Errorf("shim: ID, Bundle, StateDir and LogPath or Log are required: %w", errdefs.ErrInvalidArgument)
	}
	paths := []*string{&cfg.StateDir, &cfg.Bundle}
	if cfg.LogPath != "" {
		paths = append(paths, &cfg.LogPath)
	}
	if cfg.Log != nil && cfg.Log.Path != "" {
		lc := *cfg.Log
		cfg.Log = &lc
		paths = append(paths, &cfg.Log.Path)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("shim: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		*p = abs
	}
	return nil
}

// Pending is a shim started ahead of its container's set-up (Spawn), so
// that its process start (a Go runtime's, ~10 ms here) overlaps the
// caller's mounts and network work; it waits for Launch before it reads
// its Config. A Pending that is not launched must be closed.
type Pending struct {
	dir   string
	ready *os.File // the shim's report
	hold  *os.File // our end of its proto.HoldFD; nil once launched or closed
	pidfd int      // the shim's, for Close to wait on; -1 once used
}

// Spawn starts a held shim for stateDir (created if needed). Errors:
// ErrInvalidArgument for a state directory too long for a unix socket,
// ErrNotFound for a missing binary.
func Spawn(stateDir, shimBinary, shimName string) (*Pending, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil || stateDir == "" {
		return nil, fmt.Errorf("shim: a state directory is required: %w", errdefs.ErrInvalidArgument)
	}
	if sock := filepath.Join(dir, proto.SocketFile); len(sock) > proto.MaxSocketPath {
		return nil, fmt.Errorf("shim: state directory %s is too long for a unix socket: %w", dir, errdefs.ErrInvalidArgument)
	}
	bin := shimBinary
	if bin == "" {
		bin = "berth-shim"
	}
	if bin, err = exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("shim: %v: %w", err, errdefs.ErrNotFound)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ready, hold, pidfd, err := startShim(bin, shimName, dir)
	if err != nil {
		return nil, err
	}
	return &Pending{dir: dir, ready: ready, hold: hold, pidfd: pidfd}, nil
}

// closeWait bounds how long Close waits for the shim to exit.
const closeWait = 10 * time.Second

// Close ends a shim that was not launched and returns once it has exited,
// having made nothing (a failed start leaves no monitor behind). After
// Launch it does nothing.
func (p *Pending) Close() {
	if p.hold != nil {
		p.hold.Close()
		p.hold = nil
		p.ready.Close()
		if p.pidfd >= 0 {
			// readable once the shim has exited
			fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
			deadline := time.Now().Add(closeWait)
			for {
				_, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
				if !errors.Is(err, unix.EINTR) || time.Now().After(deadline) {
					break
				}
			}
		}
	}
	p.closePidfd()
}

func (p *Pending) closePidfd() {
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// Launch writes cfg (whose StateDir must be the Pending's) for the shim,
// lets it go on, and returns as Launch does. The Pending is used up
// either way.
func (p *Pending) Launch(ctx context.Context, cfg Config) (*Client, error) {
	if p.hold == nil {
		return nil, fmt.Errorf("shim: a pending shim is launched once: %w", errdefs.ErrInvalidArgument)
	}
	if err := cfg.complete(); err != nil {
		p.Close()
		return nil, err
	}
	if cfg.StateDir != p.dir {
		p.Close()
		return nil, fmt.Errorf("shim: launch for %s of a shim spawned for %s: %w", cfg.StateDir, p.dir, errdefs.ErrInvalidArgument)
	}
	for _, f := range []string{proto.ExitFile, proto.SocketFile, proto.PidFile} {
		os.Remove(filepath.Join(cfg.StateDir, f))
	}
	b, err := json.Marshal(cfg.Config)
	if err == nil {
		err = os.WriteFile(filepath.Join(cfg.StateDir, proto.ConfigFile), b, 0o600)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	ready := p.ready
	_, err = p.hold.Write([]byte{1})
	p.hold.Close()
	p.hold = nil
	p.closePidfd()
	if err != nil {
		ready.Close()
		return nil, fmt.Errorf("shim for %s exited before its launch (see %s): %w", cfg.ID,
			filepath.Join(cfg.StateDir, proto.ShimLog), errdefs.ErrUnknown)
	}
	sock := filepath.Join(cfg.StateDir, proto.SocketFile)
	// ready is closed by the shim when it has answered; closing it
	// ourselves on ctx cancellation tells a shim that has not answered yet
	// to clean up (its write fails with EPIPE).
	stop := context.AfterFunc(ctx, func() { ready.Close() })
	out, rerr := io.ReadAll(io.LimitReader(ready, 1<<20))
	canceled := !stop()
	ready.Close()
	var r proto.Ready
	jerr := json.Unmarshal(bytes.TrimSpace(out), &r)
	c := &Client{dir: cfg.StateDir, sock: sock, pid: r.Pid, shimPid: r.ShimPid}
	switch {
	case canceled && jerr == nil && r.Error == "" && r.Pid > 0:
		// The shim created the container just before we gave up: undo it.
		go c.abandon()
		return nil, ctx.Err()
	case canceled:
		return nil, ctx.Err()
	case rerr != nil || jerr != nil:
		return nil, fmt.Errorf("shim for %s exited without a report (see %s): %w", cfg.ID,
			filepath.Join(cfg.StateDir, proto.ShimLog), errdefs.ErrUnknown)
	case r.Error != "":
		if r.ExitCode != 0 {
			return nil, &ProcessError{Message: r.Error, ExitCode: r.ExitCode}
		}
		return nil, fmt.Errorf("%s: %w", r.Error, errdefs.ErrUnknown)
	}
	return c, nil
}

// startShim starts `berth-shim <dir>` in its own session, as berthd's child
// (reaped by shims once it exits; init's once berthd is gone), held until a
// byte on the returned hold pipe; the shim reports on the returned ready
// pipe. (Started by anything else, the shim forks itself away first.)
func startShim(bin, name, dir string) (ready, hold *os.File, waitfd int, err error) {
	logf, err := os.OpenFile(filepath.Join(dir, proto.ShimLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, -1, err
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, -1, err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, -1, err
	}
	hr, hw, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, nil, -1, err
	}
	argv0 := bin
	if name != "" {
		argv0 = filepath.Join(filepath.Dir(bin), name)
	}
	pidfd := -1
	pid, err := syscall.ForkExec(bin, []string{argv0, dir}, &syscall.ProcAttr{
		Env:   shimEnv(),
		Files: []uintptr{null.Fd(), logf.Fd(), logf.Fd(), w.Fd(), hr.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd},
	})
	w.Close()
	hr.Close()
	if err != nil {
		r.Close()
		hw.Close()
		return nil, nil, -1, fmt.Errorf("start %s: %v: %w", bin, err, errdefs.ErrUnknown)
	}
	// the reaper owns pidfd; the caller gets its own to wait on
	waitfd = -1
	if pidfd >= 0 {
		if waitfd, err = unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			waitfd = -1
		}
	}
	shims.watch(pid, pidfd)
	return r, hw, waitfd, nil
}

// shimEnv is berthd's environment for a shim started as the monitor itself
// (proto.DaemonEnv) with one P.
func shimEnv() []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+2)
	for _, e := range env {
		if !strings.HasPrefix(e, proto.DaemonEnv+"=") && !strings.HasPrefix(e, proto.HoldEnv+"=") && !strings.HasPrefix(e, "GOMAXPROCS=") {
			out = append(out, e)
		}
	}
	return append(out, proto.DaemonEnv+"=1", proto.HoldEnv+"=1", "GOMAXPROCS=1")
}

// abandon gets rid of a container nobody will manage.
func (c *Client) abandon() {
	ctx := context.Background()
	if err := c.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsConflict(err) {
		return
	}
	if _, err := c.Wait(ctx); err == nil {
		c.Release(ctx)
	}
}
