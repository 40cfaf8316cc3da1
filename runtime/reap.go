package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/internal/cgroups"
	"github.com/sirupsen/logrus"
)

// Reaping what a crash of berthd cut half-way. Every step is idempotent
// and safe on a container that holds nothing.

// reapRun stops and releases whatever a run of a container that is not
// running holds: a monitor and its container (a start cut after the
// monitor was launched), the OCI runtime's state, the cgroup, the network
// sandbox, volume mounts and the root filesystem mount, and the monitor's
// state directory.
func (s *Service) reapRun(ctx context.Context, c *ctr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.rec.ID
	stateDir := s.stateDir(id)
	if _, err := os.Stat(stateDir); err == nil {
		s.stopMonitor(ctx, stateDir)
	}
	if err := s.d.OCI.Kill(ctx, id, syscall.SIGKILL); err == nil {
		logrus.Warnf("container %s: killed a container left running by a cut start", id[:12])
	}
	s.logErr(s.d.OCI.Delete(ctx, id), "delete runtime state")
	c.held = true // whatever the record says, a cut run may hold anything
	s.teardown(ctx, c)
	_ = os.RemoveAll(stateDir)
	s.removeCgroup(s.cgroupsPath(c.rec))
}

// stopMonitor ends the monitor of stateDir, if one is there, and its
// container: one that serves (Close kills a container that still exists,
// then releases the monitor), or one whose launch was cut before it served,
// which would go on to create its container in a root filesystem about to
// be released.
func (s *Service) stopMonitor(ctx context.Context, stateDir string) {
	task, err := s.d.Monitors.Connect(ctx, stateDir)
	switch {
	case err == nil:
		s.logErr(task.Close(), "stop the monitor of a cut start")
	case !errdefs.IsNotFound(err): // ErrNotFound: it had exited and is released
		s.logErr(s.d.Monitors.Stop(ctx, stateDir), "stop the monitor of a cut launch")
	}
}

// reapOrphans removes what belongs to no container record: root
// filesystems and directories of creates cut before the record was
// written, and monitor state directories. (Cgroups are made by starts,
// which need a record: a crashed start's cgroup goes with its container's
// reapRun.) It returns how many it removed.
func (s *Service) reapOrphans(ctx context.Context, rootfses []RootfsInfo) int {
	s.mu.RLock()
	known := make(map[string]bool, len(s.byID))
	prefixes := make(map[string]bool, len(s.byID))
	for id := range s.byID {
		known[id] = true
		prefixes[id[:min(24, len(id))]] = true
	}
	s.mu.RUnlock()
	n := 0
	for _, r := range rootfses {
		if known[r.ContainerID] {
			continue
		}
		if err := s.d.Images.RemoveRootfs(ctx, r.ContainerID); err != nil {
			logrus.WithError(err).Warnf("remove root filesystem of unknown container %s", short(r.ContainerID))
			continue
		}
		logrus.Infof("removed the root filesystem of %s, whose create was cut", short(r.ContainerID))
		n++
	}
	for _, name := range dirNames(filepath.Join(s.d.DataRoot, "containers")) {
		// the image service keeps its own files there too
		if isContainerID(name) && !known[name] {
			_ = os.RemoveAll(s.containerDir(name))
			n++
		}
	}
	for _, name := range dirNames(filepath.Join(s.d.ExecRoot, "c")) {
		if prefixes[name] {
			continue
		}
		dir := filepath.Join(s.d.ExecRoot, "c", name)
		s.stopMonitor(ctx, dir)
		_ = os.RemoveAll(dir)
		n++
	}
	return n
}

// removeCgroup removes a container's (empty) cgroup from every hierarchy.
func (s *Service) removeCgroup(path string) {
	for _, m := range cgroups.Hierarchies() {
		err := syscall.Rmdir(filepath.Join(m, path))
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			logrus.WithError(err).Debugf("remove cgroup %s", filepath.Join(m, path))
		}
	}
}

func dirNames(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func short(id string) string { return id[:min(12, len(id))] }

// waitExit waits for the container's exit through its monitor. A wait
// that fails while the monitor still answers is retried; when the monitor
// is gone, goneMonitors.exit finds the exit (or kills the container). ok is
// false when the daemon is shutting down: the container keeps running.
func (s *Service) waitExit(id string, task Task) (st ExitStatus, ok bool) {
	for attempt := 0; ; attempt++ {
		st, err := task.Wait(s.ctx)
		if err == nil {
			return st, true
		}
		if s.isClosed() {
			return st, false
		}
		logrus.WithError(err).Warnf("wait for container %s", short(id))
		t, cerr := s.d.Monitors.Connect(s.ctx, s.stateDir(id))
		if cerr != nil || attempt >= 10 {
			break
		}
		task = t
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-s.ctx.Done():
			return st, false
		}
	}
	st, lost := s.gone.exit(context.Background(), id)
	if lost != "" {
		s.setError(id, lost)
	}
	return st, true
}

// setError records why a container ended in its state.
func (s *Service) setError(id, msg string) {
	s.mu.RLock()
	c := s.byID[id]
	s.mu.RUnlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	c.rec.State.Error = msg
	c.mu.Unlock()
}
