package main

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/runtime/logdriver/remote"
	"github.com/berthd/berth/runtime/shim"
	"github.com/containerd/errdefs"
)

// shimMonitors starts and finds per-container monitors (bin/berth-shim).
type shimMonitors struct {
	shimBinary string
	live       *live // the OCI runtimes
}

var _ runtime.Monitors = shimMonitors{}

func (m shimMonitors) Launch(ctx context.Context, cfg runtime.MonitorConfig) (runtime.Task, error) {
	rt, err := m.live.runtimes.Load().lookup(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	sc := shim.Config{
		ID: cfg.ID, Bundle: cfg.Bundle, StateDir: cfg.StateDir, Log: &log,
		RuntimeBinary: rt.Path, RuntimeRoot: rt.Root, RuntimeArgs: rt.Args, FastExec: rt.FastExec, ShimBinary: m.shimBinary,
		Terminal: cfg.Terminal, OpenStdin: cfg.OpenStdin, StdinOnce: cfg.StdinOnce,
	}
	if remote.Needs(log.Driver) {
		// the variant that links the drivers needing crypto/tls, found by
		// the name every monitor has
		sc.ShimBinary, sc.ShimName = m.shimBinary+"-remote", filepath.Base(m.shimBinary)
	}
	if cfg.Terminal && cfg.ConsoleSize[0] > 0 && cfg.ConsoleSize[1] > 0 {
		sc.ConsoleSize = &shim.ConsoleSize{Height: uint16(cfg.ConsoleSize[0]), Width: uint16(cfg.ConsoleSize[1])}
	}
	c, err := shim.Launch(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &shimTask{c: c, terminal: cfg.Terminal}, nil
}

func (m shimMonitors) Connect(ctx context.Context, stateDir string) (runtime.Task, error) {
	c, err := shim.Connect(ctx, stateDir)
	if err != nil {
		return nil, err
	}
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	if st.Status == "stopped" {
		// its exit is in exit.json (ReadExit): the monitor may go now
		_ = c.Release(ctx)
		return nil, errdefs.ErrNotFound.WithMessage("container already exited")
	}
	return &shimTask{c: c, terminal: true}, nil
}

func (m shimMonitors) ReadExit(stateDir string) (runtime.ExitStatus, bool, error) {
	st, ok, err := shim.ReadExit(stateDir)
	return runtime.ExitStatus{Code: st.ExitCode, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled, LogDropped: st.LogDropped}, ok, err
}

// shimTask is one monitor as the runtime sees it.
type shimTask struct {
	c        *shim.Client
	terminal bool
}

func (t *shimTask) Pid() int                        { return t.c.Pid() }
func (t *shimTask) Start(ctx context.Context) error { return t.c.Start(ctx) }

func (t *shimTask) Kill(ctx context.Context, sig syscall.Signal) error {
	err := t.c.Kill(ctx, sig)
	if errdefs.IsConflict(err) {
		return errdefs.ErrConflict.WithMessage("container is not running")
	}
	return err
}

// Close ends a monitor: a container that still exists (a start that failed
// half-way) is killed first; then the shim is told it may exit.
func (t *shimTask) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.c.Kill(ctx, syscall.SIGKILL); err == nil {
		_, _ = t.c.Wait(ctx)
	}
	if err := t.c.Release(ctx); err != nil && !errdefs.IsUnavailable(err) {
		return err
	}
	return nil
}

func (t *shimTask) Attach(ctx context.Context, s runtime.Streams) (func() error, error) {
	attached := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		err := errors.New("attach ended by an internal error")
		defer func() { done <- err }()
		defer safe.Recover("attach stream")
		err = t.c.Attach(ctx, shim.AttachOptions{
			Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr,
			OnAttached: func() { once.Do(func() { close(attached) }) },
		})
	}()
	select {
	case <-attached:
		return func() error { return <-done }, nil
	case err := <-done:
		if err == nil {
			// the output ended before we were registered: nothing to stream
			return func() error { return nil }, nil
		}
		return nil, err
	}
}

func (t *shimTask) Resize(ctx context.Context, h, w uint) error {
	err := t.c.Resize(ctx, uint16(h), uint16(w))
	if errdefs.IsInvalidArgument(err) {
		return nil // no TTY: dockerd ignores the resize too
	}
	return err
}

func (t *shimTask) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	st, err := t.c.Wait(ctx)
	return runtime.ExitStatus{Code: st.ExitCode, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled, LogDropped: st.LogDropped}, err
}

func (t *shimTask) Exec(ctx context.Context, cfg runtime.ExecConfig) (runtime.ExecTask, error) {
	sc := shim.ExecConfig{
		ID: cfg.ID, Process: cfg.ProcessJSON, Terminal: cfg.Terminal,
		Stdin: cfg.Streams.Stdin, Stdout: cfg.Streams.Stdout, Stderr: cfg.Streams.Stderr,
	}
	if cfg.Terminal && cfg.ConsoleSize[0] > 0 && cfg.ConsoleSize[1] > 0 {
		sc.ConsoleSize = &shim.ConsoleSize{Height: uint16(cfg.ConsoleSize[0]), Width: uint16(cfg.ConsoleSize[1])}
	}
	e, err := t.c.Exec(ctx, sc)
	if err != nil {
		return nil, err
	}
	return shimExec{e}, nil
}

type shimExec struct{ e *shim.Exec }

func (x shimExec) Pid() int                              { return x.e.Pid() }
func (x shimExec) Wait(ctx context.Context) (int, error) { return x.e.Wait(ctx) }
func (x shimExec) Resize(ctx context.Context, h, w uint) error {
	return x.e.Resize(ctx, uint16(h), uint16(w))
}
