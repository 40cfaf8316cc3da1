// Package runc runs the OCI runtime commands berthd issues itself (pause,
// resume, update); creating, starting and waiting for containers is the
// per-container monitor's job (runtime/shim).
package runc

import (
	"context"
	"fmt"

	gorunc "github.com/containerd/go-runc"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime drives the runc binary with its state under Root.
type Runtime struct {
	r *gorunc.Runc
}

// New returns the runtime for binary (e.g. "runc") with state in root.
func New(binary, root string) *Runtime {
	return &Runtime{r: &gorunc.Runc{Command: binary, Root: root}}
}

// Pause freezes the container's processes.
func (rt *Runtime) Pause(ctx context.Context, id string) error {
	if err := rt.r.Pause(ctx, id); err != nil {
		return fmt.Errorf("pause %s: %w", id[:12], err)
	}
	return nil
}

// Resume thaws them.
func (rt *Runtime) Resume(ctx context.Context, id string) error {
	if err := rt.r.Resume(ctx, id); err != nil {
		return fmt.Errorf("unpause %s: %w", id[:12], err)
	}
	return nil
}

// Update applies new resource limits to a running container.
func (rt *Runtime) Update(ctx context.Context, id string, r *container.Resources) error {
	if err := rt.r.Update(ctx, id, LinuxResources(r)); err != nil {
		return fmt.Errorf("update %s: %w", id[:12], err)
	}
	return nil
}

const cpuPeriod = 100000

// LinuxResources converts the resource limits `docker update` can change.
func LinuxResources(r *container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	mem := &specs.LinuxMemory{}
	if r.Memory != 0 {
		mem.Limit = &r.Memory
	}
	if r.MemorySwap != 0 {
		mem.Swap = &r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		mem.Reservation = &r.MemoryReservation
	}
	out.Memory = mem
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares != 0 {
		shares := uint64(r.CPUShares)
		cpu.Shares = &shares
	}
	switch {
	case r.NanoCPUs > 0:
		period := uint64(cpuPeriod)
		quota := r.NanoCPUs * cpuPeriod / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	case r.CPUQuota != 0 || r.CPUPeriod != 0:
		if r.CPUPeriod != 0 {
			period := uint64(r.CPUPeriod)
			cpu.Period = &period
		}
		if r.CPUQuota != 0 {
			quota := r.CPUQuota
			cpu.Quota = &quota
		}
	}
	out.CPU = cpu
	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			limit = -1 // runc's "no limit", which lifts one set before
		}
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out
}
