package ociruntime

import (
	"context"
	"sync/atomic"
	"syscall"

	"github.com/moby/moby/api/types/container"

	"github.com/berthd/berth/runtime/runc"
	"github.com/berthd/berth/runtime/shim"
)

// Live is the Set in force: Store swaps in a reloaded one, and every use
// after that sees it whole. The zero Live is empty; Store a Set first.
type Live struct{ p atomic.Pointer[Set] }

var _ shim.Runtimes = (*Live)(nil)

// Store makes s the set in force.
func (l *Live) Store(s *Set) { l.p.Store(s) }

// Load is the set in force.
func (l *Live) Load() *Set { return l.p.Load() }

// Lookup gives the monitors the runtime a container runs with (Set.Lookup).
func (l *Live) Lookup(name string) (shim.Runtime, error) {
	r, err := l.Load().Lookup(name)
	if err != nil {
		return shim.Runtime{}, err
	}
	return r.Runtime, nil
}

// Resolve checks a container's HostConfig.Runtime and names the default
// for "": the container runtime's runtime.Runtimes.
func (l *Live) Resolve(name string) (string, error) {
	r, err := l.Load().Lookup(name)
	if err != nil {
		return "", err
	}
	return r.Name, nil
}

// The runtime commands that need no monitor (runtime.OCIRuntime) run with
// the runtime that made the container: the one whose state directory has
// it.

func (l *Live) cmd(id string) *runc.Runtime {
	r := l.Load().holding(id)
	return runc.New(r.Path, r.Root)
}

func (l *Live) Pause(ctx context.Context, id string) error  { return l.cmd(id).Pause(ctx, id) }
func (l *Live) Resume(ctx context.Context, id string) error { return l.cmd(id).Resume(ctx, id) }
func (l *Live) Update(ctx context.Context, id string, r *container.Resources) error {
	return l.cmd(id).Update(ctx, id, r)
}
func (l *Live) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	return l.cmd(id).Kill(ctx, id, sig)
}
func (l *Live) Delete(ctx context.Context, id string) error { return l.cmd(id).Delete(ctx, id) }
