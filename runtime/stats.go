package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// StatsOptions are the options of GET /containers/{id}/stats.
type StatsOptions struct {
	// Stream sends a sample every statsInterval until ctx ends; else one
	// sample is sent, with precpu_stats from a sample taken one interval
	// before (so CPU % is meaningful), unless OneShot asks for it at once.
	Stream  bool
	OneShot bool
}

// statsInterval is how often dockerd's stats collector samples.
const statsInterval = time.Second

// Stats samples the container's resource usage from its cgroup (v1) and
// network namespace and hands each sample to send, like dockerd: a
// container that is not running yields samples with only its name and id.
// send's error ends the stream (the client went away) and is not returned.
func (s *Service) Stats(ctx context.Context, name string, opts StatsOptions, send func(*container.StatsResponse) error) error {
	if opts.Stream && opts.OneShot {
		return errdefs.ErrInvalidArgument.WithMessage("cannot have stream=true and one-shot=true")
	}
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	first, running, err := s.sampleStats(c)
	if err != nil {
		return err
	}
	if !opts.Stream && (!running || opts.OneShot) {
		_ = send(first)
		return nil
	}
	prev := first
	if opts.Stream {
		if send(first) != nil {
			return nil
		}
	}
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, _, err := s.sampleStats(c)
		if err != nil {
			return nil // the stream has begun: nothing to report the error on
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if send(cur) != nil || !opts.Stream {
			return nil
		}
		prev = cur
	}
}

// sampleStats reads one sample; running is false (and the sample empty
// but for name and id) when the container does not run.
func (s *Service) sampleStats(c *ctr) (_ *container.StatsResponse, running bool, _ error) {
	c.mu.Lock()
	rec := c.rec
	running = c.task != nil && c.running()
	pid, id, name := rec.State.Pid, rec.ID, rec.Name
	cg := s.cgroupsPath(rec)
	netMode := string(rec.HostConfig.NetworkMode)
	c.mu.Unlock()
	st := &container.StatsResponse{ID: id, Name: name}
	if !running {
		return st, false, nil
	}
	st.Read = time.Now().UTC()
	if err := readCgroupStats(st, cg); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// it stopped in the meantime
			return &container.StatsResponse{ID: id, Name: name}, false, nil
		}
		return nil, false, err
	}
	var err error
	if st.CPUStats.SystemUsage, st.CPUStats.OnlineCPUs, err = systemCPUUsage(); err != nil {
		return nil, false, err
	}
	if netMode != "host" {
		st.Networks = netDevStats(pid)
	}
	return st, true, nil
}

// readCgroupStats fills CPU, memory, pids and block I/O from the cgroup v1
// controllers, as dockerd's containerd metrics have them.
func readCgroupStats(st *container.StatsResponse, cg string) error {
	mem := cgroupDir("memory", cg)
	usage, err := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	if err != nil {
		return err
	}
	ms := container.MemoryStats{Usage: usage}
	ms.MaxUsage, _ = readUint(filepath.Join(mem, "memory.max_usage_in_bytes"))
	ms.Failcnt, _ = readUint(filepath.Join(mem, "memory.failcnt"))
	ms.Limit, _ = readUint(filepath.Join(mem, "memory.limit_in_bytes"))
	if total := machineMemory(); total > 0 && (ms.Limit == 0 || ms.Limit > total) {
		ms.Limit = total
	}
	ms.Stats, _ = readKV(filepath.Join(mem, "memory.stat"))
	st.MemoryStats = ms

	acct := cgroupDir("cpuacct", cg)
	cpu := container.CPUStats{}
	cpu.CPUUsage.TotalUsage, _ = readUint(filepath.Join(acct, "cpuacct.usage"))
	if b, err := os.ReadFile(filepath.Join(acct, "cpuacct.usage_percpu")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, err := strconv.ParseUint(f, 10, 64); err == nil {
				cpu.CPUUsage.PercpuUsage = append(cpu.CPUUsage.PercpuUsage, v)
			}
		}
	}
	if kv, err := readKV(filepath.Join(acct, "cpuacct.stat")); err == nil {
		cpu.CPUUsage.UsageInUsermode = kv["user"] * nanosPerTick
		cpu.CPUUsage.UsageInKernelmode = kv["system"] * nanosPerTick
	}
	if kv, err := readKV(filepath.Join(cgroupDir("cpu", cg), "cpu.stat")); err == nil {
		cpu.ThrottlingData = container.ThrottlingData{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}
	}
	st.CPUStats = cpu

	pids := cgroupDir("pids", cg)
	st.PidsStats.Current, _ = readUint(filepath.Join(pids, "pids.current"))
	st.PidsStats.Limit, _ = readUint(filepath.Join(pids, "pids.max"))

	st.BlkioStats = readBlkio(cgroupDir("blkio", cg))
	return nil
}

// nanosPerTick converts cpuacct.stat's USER_HZ ticks (100 on Linux).
const nanosPerTick = uint64(time.Second / 100)

// readBlkio reads the CFQ/BFQ-era recursive counters when the kernel has
// them, else the throttle layer's (which sees all I/O), as containerd does.
func readBlkio(dir string) container.BlkioStats {
	empty := []container.BlkioStatEntry{}
	out := container.BlkioStats{
		IoServiceBytesRecursive: empty, IoServicedRecursive: empty, IoQueuedRecursive: empty,
		IoServiceTimeRecursive: empty, IoWaitTimeRecursive: empty, IoMergedRecursive: empty,
		IoTimeRecursive: empty, SectorsRecursive: empty,
	}
	if dir == "" {
		return out
	}
	read := func(name string) []container.BlkioStatEntry {
		e, err := parseBlkio(filepath.Join(dir, name))
		if err != nil {
			return empty
		}
		return e
	}
	if _, err := os.Lstat(filepath.Join(dir, "blkio.io_serviced_recursive")); err == nil {
		out.IoServiceBytesRecursive = read("blkio.io_service_bytes_recursive")
		out.IoServicedRecursive = read("blkio.io_serviced_recursive")
		out.IoQueuedRecursive = read("blkio.io_queued_recursive")
		out.IoServiceTimeRecursive = read("blkio.io_service_time_recursive")
		out.IoWaitTimeRecursive = read("blkio.io_wait_time_recursive")
		out.IoMergedRecursive = read("blkio.io_merged_recursive")
		out.IoTimeRecursive = read("blkio.time_recursive")
		out.SectorsRecursive = read("blkio.sectors_recursive")
		return out
	}
	out.IoServiceBytesRecursive = read("blkio.throttle.io_service_bytes_recursive")
	out.IoServicedRecursive = read("blkio.throttle.io_serviced_recursive")
	return out
}

// parseBlkio reads "major:minor [op] value" lines; the "Total" line has no
// device and is left out.
func parseBlkio(path string) ([]container.BlkioStatEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := []container.BlkioStatEntry{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		majS, minS, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		maj, err1 := strconv.ParseUint(majS, 10, 64)
		minor, err2 := strconv.ParseUint(minS, 10, 64)
		v, err3 := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		e := container.BlkioStatEntry{Major: maj, Minor: minor, Value: v}
		if len(f) == 3 {
			e.Op = f[1]
		}
		out = append(out, e)
	}
	return out, nil
}

// systemCPUUsage is the host's CPU time in nanoseconds (the first seven
// fields of /proc/stat's cpu line, as dockerd sums them) and its CPU count.
func systemCPUUsage() (uint64, uint32, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (usage uint64, cpus uint32, _ error) {
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "cpu") || len(line) < 4 {
			break
		}
		if line[3] == ' ' {
			f := strings.Fields(line)
			if len(f) < 8 {
				return 0, 0, fmt.Errorf("/proc/stat: bad cpu line %q", line)
			}
			var ticks uint64
			for _, x := range f[1:8] {
				v, err := strconv.ParseUint(x, 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/stat: %w", err)
				}
				ticks += v
			}
			usage, found = ticks*nanosPerTick, true
		} else if line[3] >= '0' && line[3] <= '9' {
			cpus++
		}
	}
	if !found {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	return usage, cpus, nil
}

// netDevStats reads the interfaces of pid's network namespace, without
// loopback (dockerd reports the endpoints' interfaces).
func netDevStats(pid int) map[string]container.NetworkStats {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	return parseNetDev(b)
}

func parseNetDev(b []byte) map[string]container.NetworkStats {
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = container.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return out
}

// machineMemory is the host's RAM in bytes: the memory limit dockerd
// reports for a container without one.
func machineMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
