package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Reading a container's cgroup (v1, cgroupfs layout: runc puts the
// container at <controller mount>/<cgroupsPath>) for top and stats.

// cgroupMount is where one v1 hierarchy is mounted.
type cgroupMount struct {
	root, dir string // root of the hierarchy shown there; mount point
}

var (
	cgroupMountsOnce sync.Once
	cgroupMountsMap  map[string]cgroupMount // controller -> mount
)

// cgroupMounts reads the v1 hierarchies once: they do not move while the
// daemon runs.
func cgroupMounts() map[string]cgroupMount {
	cgroupMountsOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			cgroupMountsMap = map[string]cgroupMount{}
			return
		}
		cgroupMountsMap = parseCgroupMounts(b)
	})
	return cgroupMountsMap
}

// parseCgroupMounts maps each v1 controller (and "name=" hierarchy) to its
// first mount in a mountinfo table.
func parseCgroupMounts(mountinfo []byte) map[string]cgroupMount {
	out := map[string]cgroupMount{}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || g[0] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(g[2], ",") {
			switch opt {
			case "rw", "ro":
				continue
			}
			if _, seen := out[opt]; !seen {
				out[opt] = cgroupMount{root: f[3], dir: f[4]}
			}
		}
	}
	return out
}

// cgroupDir is the directory of cgroup path cg in controller's hierarchy
// ("" when the controller is not mounted).
func cgroupDir(controller, cg string) string {
	m, ok := cgroupMounts()[controller]
	if !ok {
		return ""
	}
	rel := cg
	if m.root != "/" {
		rel = strings.TrimPrefix(cg, m.root)
	}
	return filepath.Join(m.dir, rel)
}

// cgroupPids lists the processes in the container's cgroup (the pids
// controller, else memory, which every container has).
func cgroupPids(cg string) ([]int, error) {
	var lastErr error
	for _, ctrl := range []string{"pids", "memory", "cpuacct"} {
		dir := cgroupDir(ctrl, cg)
		if dir == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			lastErr = err
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		return pids, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no cgroup v1 pids, memory or cpuacct hierarchy is mounted")
	}
	return nil, lastErr
}

// readUint reads a file holding one number; "max" (no limit) reads as 0.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKV reads "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}
