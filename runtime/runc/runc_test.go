package runc

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

func TestLinuxResources(t *testing.T) {
	pids := int64(50)
	r := LinuxResources(&container.Resources{Memory: 64 << 20, NanoCPUs: 1_500_000_000, CPUShares: 512, PidsLimit: &pids, CpusetCpus: "0"})
	assert.Equal(t, *r.Memory.Limit, int64(64<<20))
	assert.Equal(t, *r.CPU.Period, uint64(100000))
	assert.Equal(t, *r.CPU.Quota, int64(150000))
	assert.Equal(t, *r.CPU.Shares, uint64(512))
	assert.Equal(t, r.CPU.Cpus, "0")
	assert.Equal(t, *r.Pids.Limit, int64(50))

	r = LinuxResources(&container.Resources{CPUQuota: 20000, CPUPeriod: 50000})
	assert.Equal(t, *r.CPU.Quota, int64(20000))
	assert.Equal(t, *r.CPU.Period, uint64(50000))
	assert.Check(t, r.Memory.Limit == nil)
	assert.Check(t, r.Pids == nil)

	// a limit of 0 (the API's "unlimited", as docker update --pids-limit -1
	// stores it) lifts the one set before: runc's -1
	unlimited := int64(0)
	r = LinuxResources(&container.Resources{PidsLimit: &unlimited})
	assert.Equal(t, *r.Pids.Limit, int64(-1))
}
