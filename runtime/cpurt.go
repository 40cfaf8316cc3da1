package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Real-time CPU group scheduling (cgroup v1 cpu.rt_period_us and
// cpu.rt_runtime_us). The kernel gives a new cgroup no real-time runtime,
// and a child cannot have more than its parent, so a container asking for
// --cpu-rt-runtime can only start when the daemon's --cpu-rt-runtime gave
// its parent cgroups some: as dockerd does (initCPURtController), every
// start writes the daemon's values into each cgroup above the container's.

// initCPURt gives the parent cgroups of a container the daemon's real-time
// period and runtime. Nothing to do without daemon values.
func (s *Service) initCPURt(rec *Record) error {
	if s.d.CPURealtimePeriod == 0 && s.d.CPURealtimeRuntime == 0 {
		return nil
	}
	m, ok := cgroupMounts()["cpu"]
	if !ok {
		return fmt.Errorf("unable to init CPU RT controller: no cgroup v1 cpu hierarchy")
	}
	if err := initCPURtDirs(m.dir, filepath.Dir(s.cgroupsPath(rec)), s.d.CPURealtimePeriod, s.d.CPURealtimeRuntime); err != nil {
		return fmt.Errorf("unable to init CPU RT controller: %w", err)
	}
	return nil
}

// initCPURtDirs writes period and runtime (when not 0) into every cgroup
// from the top of the hierarchy mounted at mnt down to path, creating them.
func initCPURtDirs(mnt, path string, period, runtime int64) error {
	path = filepath.Clean("/" + path)
	if path == "/" {
		return nil
	}
	if err := initCPURtDirs(mnt, filepath.Dir(path), period, runtime); err != nil {
		return err
	}
	dir := filepath.Join(mnt, path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"cpu.rt_period_us", period}, {"cpu.rt_runtime_us", runtime}} {
		if f.value == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(strconv.FormatInt(f.value, 10)), 0o700); err != nil {
			return err
		}
	}
	return nil
}
