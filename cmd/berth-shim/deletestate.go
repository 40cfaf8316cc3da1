package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runcState is what deleteByState reads of runc 1.1's state.json.
type runcState struct {
	CgroupPaths  map[string]string `json:"cgroup_paths"`
	IntelRdtPath string            `json:"intel_rdt_path"`
	Config       struct {
		Namespaces []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"namespaces"`
		Hooks map[string][]json.RawMessage `json:"Hooks"`
	} `json:"config"`
}

// cgroupRoot is where every cgroup path runc records must lie.
const cgroupRoot = "/sys/fs/cgroup/"

// deleteByState deletes a stopped container's runtime state as runc 1.1's
// `delete` does for it, without a runc process (~20 ms of every removal):
// removes the container's cgroups and its state directory. Only where that
// is all runc would do: a runtime berthd found to be runc 1.1 (FastExec), a
// private pid namespace (its processes died with the init, so nothing is
// left to kill), no poststop hooks, no Intel RDT group, the cgroupfs
// driver. deleted false: nothing was removed but what is gone for good (an
// empty cgroup), and the caller runs `runc delete --force`, which also
// kills processes a busy cgroup still holds.
func (s *shim) deleteByState() (deleted bool) {
	if !s.cfg.FastExec || s.cfg.RuntimeRoot == "" {
		return false
	}
	for _, a := range s.cfg.RuntimeArgs {
		if strings.HasPrefix(a, "--systemd-cgroup") {
			return false
		}
	}
	dir := filepath.Join(s.cfg.RuntimeRoot, s.cfg.ID)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return false
	}
	var st runcState
	if err := json.Unmarshal(b, &st); err != nil || !st.plainDelete() {
		return false
	}
	for _, p := range st.CgroupPaths {
		if err := removeCgroup(p); err != nil {
			return false
		}
	}
	return os.RemoveAll(dir) == nil
}

// plainDelete says whether deleting the stopped container is only
// removing its cgroups and state directory.
func (st *runcState) plainDelete() bool {
	if st.IntelRdtPath != "" || len(st.Config.Hooks["poststop"]) > 0 {
		return false
	}
	for _, p := range st.CgroupPaths {
		if p != filepath.Clean(p) || !strings.HasPrefix(p, cgroupRoot) {
			return false
		}
	}
	for _, ns := range st.Config.Namespaces {
		if ns.Type == "NEWPID" {
			return ns.Path == ""
		}
	}
	return false
}

// removeCgroup removes a cgroup directory and the cgroups below it, the
// deepest first; one that is gone already counts as removed. A cgroup that
// still holds a process (EBUSY) is retried briefly: the processes the
// kernel killed with the init may still be exiting.
func removeCgroup(path string) error {
	var err error
	for delay := time.Millisecond; ; delay *= 2 {
		if err = removeCgroupTree(path); !errors.Is(err, syscall.EBUSY) || delay > 16*time.Millisecond {
			return err
		}
		time.Sleep(delay)
	}
}

func removeCgroupTree(path string) error {
	err := syscall.Rmdir(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	entries, rerr := os.ReadDir(path)
	if rerr != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// deleteRuntimeState deletes the stopped container's runtime state: by
// itself where it can, else through `runc delete --force`. berthd may remove
// the state directory meanwhile (a container that is being removed): this
// runc writes no log file there; its messages go to the shim's stderr
// (shim.log).
func (s *shim) deleteRuntimeState() {
	if s.deleteByState() {
		return
	}
	if err := s.runcTo("", []uintptr{s.devNull.Fd(), 2, 2}, "delete", "--force", s.cfg.ID); err != nil {
		os.Stderr.WriteString("berth-shim: " + err.Error() + "\n")
	}
}
