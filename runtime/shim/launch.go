package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"

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
	if cfg.ID == "" || cfg.Bundle == "" || cfg.StateDir == "" || (cfg.LogPath == "" && cfg.Log == nil) {
		return nil, fmt.Errorf("shim: ID, Bundle, StateDir and LogPath or Log are required: %w", errdefs.ErrInvalidArgument)
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
			return nil, fmt.Errorf("shim: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		*p = abs
	}
	sock := filepath.Join(cfg.StateDir, proto.SocketFile)
	if len(sock) > proto.MaxSocketPath {
		return nil, fmt.Errorf("shim: state directory %s is too long for a unix socket: %w", cfg.StateDir, errdefs.ErrInvalidArgument)
	}
	bin := cfg.ShimBinary
	if bin == "" {
		bin = "berth-shim"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("shim: %v: %w", err, errdefs.ErrNotFound)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{proto.ExitFile, proto.SocketFile, proto.PidFile} {
		os.Remove(filepath.Join(cfg.StateDir, f))
	}
	b, err := json.Marshal(cfg.Config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, proto.ConfigFile), b, 0o600); err != nil {
		return nil, err
	}

	ready, err := startShim(bin, cfg.ShimName, cfg.StateDir)
	if err != nil {
		return nil, err
	}
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
// (reaped by shims once it exits; init's once berthd is gone); the shim
// reports on the returned pipe. (Started by anything else, the shim forks
// itself away first.)
func startShim(bin, name, dir string) (*os.File, error) {
	logf, err := os.OpenFile(filepath.Join(dir, proto.ShimLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	argv0 := bin
	if name != "" {
		argv0 = filepath.Join(filepath.Dir(bin), name)
	}
	pidfd := -1
	pid, err := syscall.ForkExec(bin, []string{argv0, dir}, &syscall.ProcAttr{
		Env:   shimEnv(),
		Files: []uintptr{null.Fd(), logf.Fd(), logf.Fd(), w.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd},
	})
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start %s: %v: %w", bin, err, errdefs.ErrUnknown)
	}
	shims.watch(pid, pidfd)
	return r, nil
}

// shimEnv is berthd's environment for a shim started as the monitor itself
// (proto.DaemonEnv) with one P.
func shimEnv() []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+2)
	for _, e := range env {
		if !strings.HasPrefix(e, proto.DaemonEnv+"=") && !strings.HasPrefix(e, "GOMAXPROCS=") {
			out = append(out, e)
		}
	}
	return append(out, proto.DaemonEnv+"=1", "GOMAXPROCS=1")
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
