package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/cgroups"
)

// Leftovers lists what a container id left on the host: cgroups in any v1
// hierarchy, monitor processes serving it, mounts of its root filesystem
// or state under the daemon's roots. Empty means clean.
func (d *Daemon) Leftovers(t testing.TB, id string) []string {
	t.Helper()
	var out []string
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", c.Name(), "*", id))
		out = append(out, matches...)
	}
	for _, pid := range d.ShimPids() {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.Contains(string(cmdline), id[:24]) {
			out = append(out, "shim pid "+strconv.Itoa(pid))
		}
	}
	for _, m := range append(MountsUnder(d.DataRoot), MountsUnder(d.ExecRoot)...) {
		if strings.Contains(m, id) {
			out = append(out, "mount "+m)
		}
	}
	if _, err := os.Stat(filepath.Join(d.ExecRoot, "c", id[:24])); err == nil {
		out = append(out, "state dir of "+id)
	}
	return out
}

// ShimPids are the monitor processes whose state lives under this daemon's
// exec root.
func (d *Daemon) ShimPids() []int { return d.pidsOf("berth-shim") }

// BuildKitPids are the berth-buildkitd processes serving this daemon (their
// socket is under its exec root).
func (d *Daemon) BuildKitPids() []int { return d.pidsOf("berth-buildkitd") }

// pidsOf lists the processes running binary whose command line names this
// daemon's exec root.
func (d *Daemon) pidsOf(binary string) []int {
	return processes(func(_ string, cmdline string) bool {
		return strings.Contains(cmdline, d.ExecRoot) && isBinary(cmdline, binary)
	})
}

// processes lists the processes whose /proc directory and command line
// (NUL-separated; empty for a zombie) match accepts.
func processes(match func(dir, cmdline string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err == nil && len(cmdline) > 0 && match(dir, string(cmdline)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isBinary says whether a command line runs binary (by its base name).
func isBinary(cmdline, binary string) bool {
	argv0, _, _ := strings.Cut(cmdline, "\x00")
	return filepath.Base(argv0) == binary
}

// waitBuildKitGone waits for this daemon's berth-buildkitd to exit (a
// helper whose berthd was killed stops its builds first) and kills what
// is left after the wait, reporting it.
func (d *Daemon) waitBuildKitGone(t testing.TB) {
	deadline := time.Now().Add(30 * time.Second)
	pids := d.BuildKitPids()
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		pids = d.BuildKitPids()
	}
	for _, pid := range pids {
		t.Errorf("berth-buildkitd %d outlived its berthd by 30s: killed", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ImageCopyPids are the berth-imagecopy processes this daemon started and
// that still run (one per pull, push, load or save in flight).
func (d *Daemon) ImageCopyPids() []int {
	parent := strconv.Itoa(d.Pid())
	return processes(func(dir, cmdline string) bool {
		if !isBinary(cmdline, "berth-imagecopy") {
			return false
		}
		// stat: pid (comm) state ppid ...
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		return err == nil && len(f) > 1 && f[1] == parent
	})
}

// waitShimsGone waits up to timeout for this daemon's monitors to exit and
// returns those still running.
func (d *Daemon) waitShimsGone(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	pids := d.ShimPids()
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		pids = d.ShimPids()
	}
	return pids
}

// killLeftContainers kills, by PID, the monitors still running under this
// daemon's exec root and the processes of their containers (found by the
// container id in the monitor's command line, in the daemon's cgroup
// parent), so that nothing a test started outlives it.
func (d *Daemon) killLeftContainers() {
	parent := d.CgroupParent()
	for _, pid := range d.ShimPids() {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			id := filepath.Base(arg)
			if len(id) < 24 || !isHex(id) {
				continue
			}
			for _, m := range cgroups.Hierarchies() {
				dirs, _ := filepath.Glob(filepath.Join(m, parent, id[:24]+"*"))
				for _, dir := range dirs {
					procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
					for _, f := range strings.Fields(string(procs)) {
						if p, err := strconv.Atoi(f); err == nil {
							_ = syscall.Kill(p, syscall.SIGKILL)
						}
					}
				}
			}
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
