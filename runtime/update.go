package runtime

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Update changes a container's restart policy and resource limits. Limits
// apply to the running process through the OCI runtime and to later starts.
func (s *Service) Update(ctx context.Context, name string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := *c.rec.HostConfig
	if cfg.RestartPolicy.Name != "" {
		hc.RestartPolicy = cfg.RestartPolicy
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return container.UpdateResponse{}, errdefs.ErrInvalidArgument.WithMessage("Restart policy cannot be updated because AutoRemove is enabled for the container")
	}
	r := cfg.Resources
	if r.Memory != 0 && r.MemorySwap == 0 && r.Memory > hc.MemorySwap {
		// dockerd's rule (container.UpdateContainer): memory alone may not
		// pass the swap limit in place, which 0 (never set) and -1 count as
		return container.UpdateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot update container %s: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", c.rec.ID))
	}
	if r.Memory != 0 {
		hc.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		hc.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		hc.MemoryReservation = r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		hc.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		hc.CPUShares = r.CPUShares
	}
	if r.CPUQuota != 0 {
		hc.CPUQuota = r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		hc.CPUPeriod = r.CPUPeriod
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		hc.PidsLimit = r.PidsLimit
	}
	if r.BlkioWeight != 0 {
		hc.BlkioWeight = r.BlkioWeight
	}
	pids := hc.PidsLimit
	if _, err := validateHostConfig(&hc); err != nil {
		return container.UpdateResponse{}, err
	}
	if pids != nil && *pids <= 0 {
		// 0 and -1 lift the limit (validation drops them, as at create):
		// stored as 0, as dockerd does, and applied as runc's "no limit"
		unlimited := int64(0)
		hc.PidsLimit = &unlimited
	}
	if c.task != nil && resourcesChanged(c.rec.HostConfig, &hc) {
		if err := s.d.OCI.Update(ctx, c.rec.ID, &hc.Resources); err != nil {
			return container.UpdateResponse{}, err
		}
	}
	c.rec.HostConfig = &hc
	if err := s.save(c); err != nil {
		return container.UpdateResponse{}, err
	}
	s.event(c.rec, events.ActionUpdate, nil)
	return container.UpdateResponse{Warnings: []string{}}, nil
}

func resourcesChanged(a, b *container.HostConfig) bool {
	return a.Memory != b.Memory || a.MemorySwap != b.MemorySwap || a.MemoryReservation != b.MemoryReservation ||
		a.NanoCPUs != b.NanoCPUs || a.CPUShares != b.CPUShares || a.CPUQuota != b.CPUQuota || a.CPUPeriod != b.CPUPeriod ||
		a.CpusetCpus != b.CpusetCpus || a.CpusetMems != b.CpusetMems || a.BlkioWeight != b.BlkioWeight ||
		(a.PidsLimit == nil) != (b.PidsLimit == nil) || (a.PidsLimit != nil && *a.PidsLimit != *b.PidsLimit)
}
