package oci

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Host is what the host allows. Generate and Validate check and clamp a
// container's settings against it instead of asking the system, so they stay
// pure; ProbeHost fills one from the running system and tests write their own.
type Host struct {
	// NumCPU bounds NanoCpus ("range of CPUs is from 0.01 to N.00").
	NumCPU int
	// Rlimits are the engine's own limits keyed by OCI name ("RLIMIT_NOFILE").
	// Without CAP_SYS_RESOURCE runc cannot raise a hard limit, so a container's
	// ulimit is lowered to the hard limit found here. A missing type is not clamped.
	Rlimits map[string]Rlimit
	// Capabilities the engine holds ("CAP_CHOWN", ...): what a privileged
	// container or --cap-add ALL gets, and the only ones --cap-add may name.
	Capabilities []string
	// Sysctls that exist on the host among those Docker sets by default in a
	// container's own network namespace (net.ipv4.ping_group_range,
	// net.ipv4.ip_unprivileged_port_start); runc fails on a missing one.
	Sysctls map[string]bool
	// MaskedPaths are host-specific paths masked in addition to Docker's
	// fixed list (per-CPU thermal_throttle directories).
	MaskedPaths []string
	// Cgroup says which resource controls the host's cgroups support.
	Cgroup CgroupFeatures
	// Devices looks up device nodes on the host (--device, --privileged,
	// blkio throttles).
	Devices DeviceLookup
	// AppArmor is set when the kernel runs AppArmor: apparmor= profiles are
	// applied (see withAppArmor).
	AppArmor bool
	// NoX32ABI is set when the kernel's configuration says it was built
	// without the x32 ABI (amd64 only): the default seccomp profile then
	// leaves x32 out (see withSeccomp). Unknown: false, as Docker.
	NoX32ABI bool
}

// Rlimit is one resource limit.
type Rlimit struct{ Soft, Hard uint64 }

// CgroupFeatures mirrors the parts of Docker's sysinfo that decide whether a
// resource setting is applied, discarded with a warning, or rejected.
type CgroupFeatures struct {
	Memory            bool
	MemorySwap        bool
	MemoryReservation bool
	MemorySwappiness  bool
	OomKillDisable    bool
	CPUShares         bool
	CPUCfs            bool
	Cpuset            bool
	Pids              bool
	BlkioWeight       bool
	// CPURealtime: the cgroup v1 cpu controller has real-time group
	// scheduling (cpu.rt_period_us, cpu.rt_runtime_us).
	CPURealtime bool
	// Cpus and Mems are the host's cpuset lists ("0-3"), for --cpuset-*.
	Cpus, Mems string
}

var (
	probeOnce sync.Once
	probed    *Host
)

// ProbeHost reads the host once (the answer cannot change while the engine
// runs) and returns it. Callers must not modify the result.
func ProbeHost() *Host {
	probeOnce.Do(func() { probed = probeHost() })
	return probed
}

func probeHost() *Host {
	h := &Host{
		NumCPU:       runtime.NumCPU(),
		Rlimits:      map[string]Rlimit{},
		Capabilities: currentCapabilities(),
		Sysctls:      map[string]bool{},
		Cgroup:       probeCgroups(),
		Devices:      hostDevices{},
		AppArmor:     appArmorEnabled(),
		NoX32ABI:     runtime.GOARCH == "amd64" && kernelConfigSays(noX32ABI),
	}
	for name, res := range rlimitResources {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err == nil {
			h.Rlimits[name] = Rlimit{Soft: rl.Cur, Hard: rl.Max}
		}
	}
	for _, k := range []string{sysctlPingGroupRange, sysctlUnprivilegedPortStart} {
		if _, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))); err == nil {
			h.Sysctls[k] = true
		}
	}
	// Docker masks thermal_throttle of every possible CPU (GHSA-6fw5-f8r9-fgfm).
	if cpus, err := os.ReadFile("/sys/devices/system/cpu/possible"); err == nil {
		if ids, err := parseList(strings.TrimSpace(string(cpus))); err == nil {
			for _, id := range ids {
				p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", id)
				if _, err := os.Stat(p); err == nil {
					h.MaskedPaths = append(h.MaskedPaths, p)
				}
			}
		}
	}
	return h
}

// currentCapabilities lists the effective capabilities of this process, as
// Docker does to decide what "all capabilities" means.
func currentCapabilities() []string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil
		}
		var caps []string
		for i, name := range capabilityNames {
			if mask&(1<<uint(i)) != 0 {
				caps = append(caps, name)
			}
		}
		return caps
	}
	return nil
}

// probeCgroups answers from cgroup v1 controller files when the host has
// them (this host: hybrid), else from the unified hierarchy's controllers.
func probeCgroups() CgroupFeatures {
	const root = "/sys/fs/cgroup"
	exists := func(p ...string) bool {
		_, err := os.Stat(filepath.Join(append([]string{root}, p...)...))
		return err == nil
	}
	read := func(p ...string) string {
		b, _ := os.ReadFile(filepath.Join(append([]string{root}, p...)...))
		return strings.TrimSpace(string(b))
	}
	if !exists("cgroup.controllers") {
		return CgroupFeatures{
			Memory:            exists("memory", "memory.limit_in_bytes"),
			MemorySwap:        exists("memory", "memory.memsw.limit_in_bytes"),
			MemoryReservation: exists("memory", "memory.soft_limit_in_bytes"),
			MemorySwappiness:  exists("memory", "memory.swappiness"),
			OomKillDisable:    exists("memory", "memory.oom_control"),
			CPUShares:         exists("cpu", "cpu.shares"),
			CPUCfs:            exists("cpu", "cpu.cfs_quota_us"),
			CPURealtime:       exists("cpu", "cpu.rt_period_us") && exists("cpu", "cpu.rt_runtime_us"),
			Cpuset:            exists("cpuset", "cpuset.cpus"),
			Pids:              exists("pids", "cgroup.procs"),
			BlkioWeight:       exists("blkio", "blkio.weight") || exists("blkio", "blkio.bfq.weight"),
			Cpus:              read("cpuset", "cpuset.cpus"),
			Mems:              read("cpuset", "cpuset.mems"),
		}
	}
	ctrl := map[string]bool{}
	for _, c := range strings.Fields(read("cgroup.controllers")) {
		ctrl[c] = true
	}
	return CgroupFeatures{
		Memory:            ctrl["memory"],
		MemorySwap:        ctrl["memory"],
		MemoryReservation: ctrl["memory"],
		CPUShares:         ctrl["cpu"],
		CPUCfs:            ctrl["cpu"],
		Cpuset:            ctrl["cpuset"],
		Pids:              ctrl["pids"],
		BlkioWeight:       ctrl["io"],
		Cpus:              read("cpuset.cpus.effective"),
		Mems:              read("cpuset.mems.effective"),
	}
}

// appArmorEnabled is moby's HostSupportsAppArmor: the module says Y.
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// kernelConfigSays applies says to the running kernel's build
// configuration (/proc/config.gz, else /boot/config-<release>); false when
// neither can be read.
func kernelConfigSays(says func(config string) bool) bool {
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			if b, err := io.ReadAll(io.LimitReader(zr, 4<<20)); err == nil {
				return says(string(b))
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	b, err := os.ReadFile("/boot/config-" + unix.ByteSliceToString(u.Release[:]))
	return err == nil && says(string(b))
}

// noX32ABI: a kernel configuration (not empty) without the x32 ABI, whose
// option is CONFIG_X86_X32_ABI since Linux 5.18 and CONFIG_X86_X32 before.
func noX32ABI(config string) bool {
	if !strings.Contains(config, "CONFIG_X86_64=y") {
		return false // not an x86_64 kernel's configuration: nothing to say
	}
	for _, line := range strings.Split(config, "\n") {
		if line == "CONFIG_X86_X32_ABI=y" || line == "CONFIG_X86_X32=y" {
			return false
		}
	}
	return true
}
