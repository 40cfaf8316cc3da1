package shim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logdriver/remote"
	"github.com/berthd/berth/runtime/monitor"
	"github.com/berthd/berth/runtime/shim/proto"
)

// Runtime is an OCI runtime a shim runs containers with.
type Runtime struct {
	Path string   // its binary
	Root string   // its state directory (--root)
	Args []string // more global flags
	// FastExec: execs may skip the runtime (berth-nsexec); only for a
	// runtime and version the fast path was proven equivalent to.
	FastExec bool
}

// Runtimes finds the OCI runtime a container asks for.
type Runtimes interface {
	// Lookup returns the runtime of that name ("": the default one);
	// ErrInvalidArgument, in dockerd's words, when there is none or it
	// cannot run containers here.
	Lookup(name string) (Runtime, error)
}

// Monitors launches and reconnects to berth-shims: the runtime's
// monitor.Monitors.
type Monitors struct {
	shimBinary string
	runtimes   Runtimes
	exitGrace  time.Duration // Config.ExitGrace; tests set it
}

var (
	_ monitor.Monitors = (*Monitors)(nil)
	_ monitor.Pending  = (*pending)(nil)
	_ monitor.Task     = (*task)(nil)
	_ monitor.ExecTask = (*Exec)(nil)
)

// NewMonitors returns Monitors that run shimBinary (an absolute path;
// shimBinary+"-remote" for the logging drivers only that variant links) and
// take each container's OCI runtime from runtimes.
func NewMonitors(shimBinary string, runtimes Runtimes) (*Monitors, error) {
	if !filepath.IsAbs(shimBinary) || runtimes == nil {
		return nil, fmt.Errorf("shim.NewMonitors: an absolute shim path and the runtimes are required: %w", errdefs.ErrInvalidArgument)
	}
	return &Monitors{shimBinary: shimBinary, runtimes: runtimes}, nil
}

// Launch starts a shim for cfg with the runtime cfg names; see Launch.
func (m *Monitors) Launch(ctx context.Context, cfg monitor.Config) (monitor.Task, error) {
	if _, err := m.runtimes.Lookup(cfg.Runtime); err != nil {
		return nil, err // before anything is started
	}
	p, err := m.Prepare(ctx, cfg.StateDir, cfg.Log)
	if err != nil {
		return nil, err
	}
	return p.Launch(ctx, cfg)
}

// Prepare spawns the shim of stateDir, held until its Launch; see Spawn.
func (m *Monitors) Prepare(ctx context.Context, stateDir string, log logdriver.Config) (monitor.Pending, error) {
	bin, name := m.binary(log.Driver)
	p, err := Spawn(stateDir, bin, name)
	if err != nil {
		return nil, err
	}
	return &pending{m: m, p: p}, nil
}

// binary is the shim build for a logging driver and its argv[0] name.
func (m *Monitors) binary(driver string) (bin, name string) {
	if remote.Needs(driver) {
		// the variant that links the drivers needing crypto/tls, found by
		// the name every monitor has
		return m.shimBinary + "-remote", filepath.Base(m.shimBinary)
	}
	return m.shimBinary, ""
}

// pending is a spawned shim as a monitor.Pending.
type pending struct {
	m *Monitors
	p *Pending
}

func (p *pending) Close() { p.p.Close() }

// Launch creates the container in the pending shim with the runtime cfg
// names.
func (p *pending) Launch(ctx context.Context, cfg monitor.Config) (monitor.Task, error) {
	rt, err := p.m.runtimes.Lookup(cfg.Runtime)
	if err != nil {
		p.p.Close()
		return nil, err
	}
	log := cfg.Log
	sc := Config{
		Config: proto.Config{
			ID: cfg.ID, Bundle: cfg.Bundle, Log: &log,
			RuntimeBinary: rt.Path, RuntimeRoot: rt.Root, RuntimeArgs: rt.Args, FastExec: rt.FastExec,
			ExitGrace: p.m.exitGrace, Terminal: cfg.Terminal, OpenStdin: cfg.OpenStdin, StdinOnce: cfg.StdinOnce,
		},
		StateDir: cfg.StateDir,
	}
	if cfg.Terminal && cfg.ConsoleSize.Set() {
		sc.ConsoleHeight, sc.ConsoleWidth = dims(cfg.ConsoleSize)
	}
	c, err := p.p.Launch(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &task{c: c}, nil
}

// Connect reconnects to the shim of stateDir. A shim whose container has
// exited is released (its status stays in stateDir for ReadExit) and
// ErrNotFound returned: there is nothing left to monitor.
func (m *Monitors) Connect(ctx context.Context, stateDir string) (monitor.Task, error) {
	c, st, err := connectState(ctx, stateDir)
	if err != nil {
		return nil, err
	}
	if st.Status == "stopped" {
		_ = c.Release(ctx)
		return nil, errdefs.ErrNotFound.WithMessage("container already exited")
	}
	return &task{c: c}, nil
}

// ReadExit is ReadExit.
func (m *Monitors) ReadExit(stateDir string) (monitor.ExitStatus, bool, error) {
	return ReadExit(stateDir)
}

// task is one shim as the runtime drives it: the Client with the
// runtime's error words and lifetime.
type task struct{ c *Client }

func (t *task) Pid() int                        { return t.c.Pid() }
func (t *task) Start(ctx context.Context) error { return t.c.Start(ctx) }

func (t *task) Wait(ctx context.Context) (monitor.ExitStatus, error) { return t.c.Wait(ctx) }

// Kill: a container that is not running is a conflict in dockerd's words.
func (t *task) Kill(ctx context.Context, sig syscall.Signal) error {
	err := t.c.Kill(ctx, sig)
	if errdefs.IsConflict(err) {
		return errdefs.ErrConflict.WithMessage("container is not running")
	}
	return err
}

// closeTimeout bounds Close's kill, wait and release.
const closeTimeout = 10 * time.Second

// Close ends a monitor: a container that still exists (a start that failed
// half-way) is killed and waited for first; then the shim is told it may
// exit. A shim already gone is not an error.
func (t *task) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := t.c.Kill(ctx, syscall.SIGKILL); err == nil {
		_, _ = t.c.Wait(ctx)
	}
	if err := t.c.Release(ctx); err != nil && !errdefs.IsUnavailable(err) {
		return err
	}
	return nil
}

// Attach returns once the shim has registered the streams (or the output
// ended before it could: then wait returns nil at once).
func (t *task) Attach(ctx context.Context, s monitor.Streams) (func() error, error) {
	attached := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		err := errors.New("attach ended by an internal error")
		defer func() { done <- err }()
		defer safe.Recover("attach stream")
		err = t.c.Attach(ctx, AttachOptions{Streams: s, OnAttached: func() { once.Do(func() { close(attached) }) }})
	}()
	select {
	case <-attached:
		return func() error { return <-done }, nil
	case err := <-done:
		if err == nil {
			return func() error { return nil }, nil
		}
		return nil, err
	}
}

// Resize of a container without a terminal is ignored, as dockerd does.
func (t *task) Resize(ctx context.Context, height, width uint) error {
	h, w := dims(monitor.ConsoleSize{height, width})
	err := t.c.Resize(ctx, h, w)
	if errdefs.IsInvalidArgument(err) {
		return nil
	}
	return err
}

func (t *task) Exec(ctx context.Context, cfg monitor.ExecConfig) (monitor.ExecTask, error) {
	e, err := t.c.Exec(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return e, nil
}
