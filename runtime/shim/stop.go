package shim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Stop ends the monitor of stateDir that serves no socket yet: one whose
// launch a stop of berthd cut while the monitor ran the OCI runtime's
// create. Left alone, such a monitor goes on to create its container (its
// mounts made in a root filesystem berthd has released meanwhile), finds
// nobody reading its report and destroys it again. Stop kills the
// monitor's process group (the monitor leads a session and its group, see
// startShim; the runtime's create runs in it) and returns once the monitor
// has exited. No such monitor: nil.
func (m *Monitors) Stop(ctx context.Context, stateDir string) error {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	for _, pid := range monitorsOf(dir) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		// checked again with the pidfd held: a pid that was reused
		// between the scan and the open is not this monitor (and a
		// group's id is not reused while the group has members)
		if isMonitorOf(pid, dir) {
			err = unix.Kill(-pid, unix.SIGKILL)
		}
		if err == nil {
			err = waitPidfd(ctx, fd)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("stop the monitor %d of %s: %w", pid, dir, err)
		}
	}
	return nil
}

// monitorsOf lists the processes running as the monitor of dir: argv is
// exactly [monitor, dir] (argv[0] may be renamed: the remote variant runs
// under the monitor's name) and each leads its own session.
func monitorsOf(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if isMonitorOf(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

func isMonitorOf(pid int, dir string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
	sid, err := unix.Getsid(pid)
	return len(args) == 2 && args[1] == dir && err == nil && sid == pid
}

// waitPidfd returns once the process of fd has exited (its pidfd becomes
// readable then, zombie or reaped) or ctx ends.
func waitPidfd(ctx context.Context, fd int) error {
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
