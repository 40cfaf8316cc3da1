package oci

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

const linuxMinMemory = 6 << 20

// checkResources is Docker's verifyPlatformContainerResources: it rejects
// bad values with Docker's messages and, for what the host's cgroups cannot
// do, drops the setting from r and says so in a warning.
func checkResources(r *container.Resources, h *Host) (warnings []string, _ error) {
	cg := h.Cgroup
	warn := func(s string) { warnings = append(warnings, s) }

	if r.Memory < 0 {
		return warnings, invalid("invalid memory value %d: Minimum memory limit allowed is 6MB", r.Memory)
	}
	if r.Memory != 0 && r.Memory < linuxMinMemory {
		return warnings, invalid("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && !cg.Memory {
		warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.Memory, r.MemorySwap = 0, -1
	}
	if r.MemorySwap < -1 {
		return warnings, invalid("invalid memory swap value %d: use -1 for unlimited swap", r.MemorySwap)
	}
	if r.Memory > 0 && r.MemorySwap != -1 && r.MemorySwap != 0 && !cg.MemorySwap {
		warn("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		r.MemorySwap = -1
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return warnings, invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return warnings, invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil // -1 means "unset" in Docker's API
	}
	if r.MemorySwappiness != nil && !cg.MemorySwappiness {
		warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
		r.MemorySwappiness = nil
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return warnings, invalid("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.MemoryReservation < 0 {
		return warnings, invalid("invalid memory reservation value %d", r.MemoryReservation)
	}
	if r.MemoryReservation > 0 && !cg.MemoryReservation {
		warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.MemoryReservation = 0
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < linuxMinMemory {
		return warnings, invalid("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return warnings, invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.OomKillDisable != nil && !cg.OomKillDisable {
		if *r.OomKillDisable {
			warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
		}
		r.OomKillDisable = nil
	}
	if r.OomKillDisable != nil && *r.OomKillDisable && r.Memory == 0 {
		warn("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	if r.PidsLimit != nil && !cg.Pids {
		if *r.PidsLimit > 0 {
			warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
		}
		r.PidsLimit = nil
	}

	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return warnings, invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return warnings, invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs > 0 && !cg.CPUCfs {
		return warnings, invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
	}
	if r.NanoCPUs != 0 && (r.NanoCPUs < 0 || r.NanoCPUs > int64(h.NumCPU)*1e9) {
		return warnings, invalid("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", h.NumCPU)
	}
	if r.CPUShares < 0 {
		return warnings, invalid("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUShares > 0 && !cg.CPUShares {
		warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		r.CPUShares = 0
	}
	if (r.CPUPeriod != 0 || r.CPUQuota != 0) && !cg.CPUCfs {
		warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
		r.CPUPeriod, r.CPUQuota = 0, 0
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return warnings, invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return warnings, invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if (r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0) && !cg.CPURealtime {
		return warnings, invalid("Your kernel does not support CPU real-time scheduler")
	}
	if r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return warnings, invalid("cpu real-time runtime cannot be higher than cpu real-time period")
	}
	if r.CPUPercent > 0 {
		warn("linux does not support CPU percent. Percent discarded.")
		r.CPUPercent = 0
	}

	if (r.CpusetCpus != "" || r.CpusetMems != "") && !cg.Cpuset {
		warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		r.CpusetCpus, r.CpusetMems = "", ""
	}
	if err := checkCpuset(r.CpusetCpus, cg.Cpus, "cpus", "CPUs"); err != nil {
		return warnings, err
	}
	if err := checkCpuset(r.CpusetMems, cg.Mems, "mems", "memory nodes"); err != nil {
		return warnings, err
	}

	if r.BlkioWeight > 0 && !cg.BlkioWeight {
		warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return warnings, invalid("Range of blkio weight is from 10 to 1000")
	}
	if len(r.BlkioWeightDevice) > 0 && !cg.BlkioWeight {
		warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = nil
	}
	if r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0 {
		return warnings, invalid("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
	}
	return warnings, nil
}

// checkCpuset validates a --cpuset-cpus/--cpuset-mems list and that the host has them.
func checkCpuset(want, have, what, plural string) error {
	if want == "" {
		return nil
	}
	ids, err := parseList(want)
	if err != nil {
		return invalid("Invalid value %s for cpuset %s: %v", want, what, err)
	}
	avail, err := parseList(have)
	if err != nil || have == "" {
		return nil // the host did not say; let the kernel decide
	}
	set := map[int]bool{}
	for _, id := range avail {
		set[id] = true
	}
	for _, id := range ids {
		if !set[id] {
			return invalid("Requested %s are not available - requested %s, available: %s", plural, want, have)
		}
	}
	return nil
}

// parseList parses a kernel list ("0-3,5") into its members.
func parseList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid format: %s", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("invalid format: %s", s)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, int(i))
		}
	}
	return out, nil
}

// withResources converts checked resources into the spec's cgroup settings,
// as Docker's WithResources does.
func withResources(r container.Resources, devices DeviceLookup) specOpt {
	return func(s *specs.Spec) error {
		res := s.Linux.Resources
		var mem specs.LinuxMemory
		if r.Memory > 0 {
			mem.Limit = &r.Memory
			if r.MemorySwap != 0 {
				// -1 is unlimited swap; runc writes it through as such.
				swap := r.MemorySwap
				mem.Swap = &swap
			}
		}
		if r.MemoryReservation > 0 {
			mem.Reservation = &r.MemoryReservation
		}
		if r.MemorySwappiness != nil {
			sw := uint64(*r.MemorySwappiness)
			mem.Swappiness = &sw
		}
		if r.OomKillDisable != nil {
			mem.DisableOOMKiller = r.OomKillDisable
		}
		if mem != (specs.LinuxMemory{}) {
			res.Memory = &mem
		}

		var cpu specs.LinuxCPU
		if r.CPUShares > 0 {
			shares := uint64(r.CPUShares)
			cpu.Shares = &shares
		}
		cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
		if r.NanoCPUs > 0 {
			period := uint64(100000) // 100ms, in µs
			quota := r.NanoCPUs * int64(period) / 1e9
			cpu.Period, cpu.Quota = &period, &quota
		}
		if r.CPUPeriod != 0 {
			period := uint64(r.CPUPeriod)
			cpu.Period = &period
		}
		if r.CPUQuota != 0 {
			quota := r.CPUQuota
			cpu.Quota = &quota
		}
		if r.CPURealtimePeriod != 0 {
			period := uint64(r.CPURealtimePeriod)
			cpu.RealtimePeriod = &period
		}
		if r.CPURealtimeRuntime != 0 {
			runtime := r.CPURealtimeRuntime
			cpu.RealtimeRuntime = &runtime
		}
		if cpu != (specs.LinuxCPU{}) {
			res.CPU = &cpu
		}

		if r.PidsLimit != nil && *r.PidsLimit > 0 {
			limit := *r.PidsLimit
			res.Pids = &specs.LinuxPids{Limit: &limit}
		}

		blkio, err := blockIO(r, devices)
		if err != nil {
			return err
		}
		res.BlockIO = blkio
		return nil
	}
}

func blockIO(r container.Resources, devices DeviceLookup) (*specs.LinuxBlockIO, error) {
	var b specs.LinuxBlockIO
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		b.Weight = &w
	}
	for _, wd := range r.BlkioWeightDevice {
		if wd == nil {
			continue
		}
		major, minor, err := blockDevice(devices, wd.Path)
		if err != nil {
			return nil, err
		}
		w := wd.Weight
		d := specs.LinuxWeightDevice{Weight: &w}
		d.Major, d.Minor = major, minor
		b.WeightDevice = append(b.WeightDevice, d)
	}
	var err error
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, td := range t.in {
			if td == nil {
				continue
			}
			d := specs.LinuxThrottleDevice{Rate: td.Rate}
			if d.Major, d.Minor, err = blockDevice(devices, td.Path); err != nil {
				return nil, err
			}
			*t.out = append(*t.out, d)
		}
	}
	if b.Weight == nil && b.WeightDevice == nil && b.ThrottleReadBpsDevice == nil &&
		b.ThrottleWriteBpsDevice == nil && b.ThrottleReadIOPSDevice == nil && b.ThrottleWriteIOPSDevice == nil {
		return nil, nil
	}
	return &b, nil
}

func blockDevice(devices DeviceLookup, path string) (major, minor int64, _ error) {
	devs, err := devices.Device(path)
	if err != nil || len(devs) != 1 || devs[0].Path != path {
		return 0, 0, invalid("%s is not a device node", path)
	}
	return devs[0].Major, devs[0].Minor, nil
}
