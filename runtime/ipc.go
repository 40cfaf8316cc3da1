package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// IPC and PID namespaces, as dockerd sets them up (setupIPCDirs,
// getIPCContainer, getPIDContainer):
//
//   - "shareable" (and the empty mode of records from before modes existed)
//     gets a /dev/shm that is a tmpfs on the host, under the container's
//     directory, so that another container can mount the same one;
//   - "container:<id>" joins that container's IPC namespace and mounts its
//     /dev/shm; the donor must run and be shareable (or on the host's IPC);
//   - "private" and "none" get their /dev/shm from the spec (or none).
//
// PidMode "container:<id>" joins a running container's PID namespace.

// namespaceJoin is what a starting container joins or mounts for its IPC
// and PID modes.
type namespaceJoin struct {
	ipcPath, pidPath string
	mounts           []specs.Mount
}

// shmDir is where a shareable container's /dev/shm lives on the host.
func (s *Service) shmDir(id string) string {
	return filepath.Join(s.containerDir(id), "mounts", "shm")
}

// setupNamespaces resolves the IPC and PID namespaces a container joins and
// mounts a shareable /dev/shm. Call with c.mu held (it takes the donors'
// locks); u undoes the mount when the start fails later.
func (s *Service) setupNamespaces(c *ctr, u *undo) (namespaceJoin, error) {
	rec := c.rec
	hc := rec.HostConfig
	var j namespaceJoin
	switch {
	case hc.IpcMode.IsContainer():
		pid, shm, err := s.ipcDonor(c, hc.IpcMode.Container())
		if err != nil {
			return j, fmt.Errorf("failed to join IPC namespace: %w", err)
		}
		j.ipcPath = "/proc/" + strconv.Itoa(pid) + "/ns/ipc"
		if !hasMountFor(rec, "/dev/shm") {
			j.mounts = append(j.mounts, shmMount(shm))
		}
	case hc.IpcMode.IsShareable() || hc.IpcMode.IsEmpty():
		if !hasMountFor(rec, "/dev/shm") {
			dir := s.shmDir(rec.ID)
			if err := mountShm(dir, hc.ShmSize); err != nil {
				return j, err
			}
			u.add(func() { unmountShm(dir) })
			j.mounts = append(j.mounts, shmMount(dir))
		}
	}
	if hc.PidMode.IsContainer() {
		donor, err := s.runningDonor(c, hc.PidMode.Container())
		if err != nil {
			return j, fmt.Errorf("failed to join PID namespace: %w", err)
		}
		donor.mu.Lock()
		pid := donor.rec.State.Pid
		donor.mu.Unlock()
		j.pidPath = "/proc/" + strconv.Itoa(pid) + "/ns/pid"
	}
	return j, nil
}

// runningDonor finds a container whose namespace c joins: it must exist,
// run and not be restarting (dockerd's errors).
func (s *Service) runningDonor(c *ctr, id string) (*ctr, error) {
	donor, err := s.lookup(id)
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if donor == c {
		return nil, errdefs.ErrInvalidArgument.WithMessage("cannot join own namespace")
	}
	donor.mu.Lock()
	defer donor.mu.Unlock()
	switch donor.rec.State.Status {
	case container.StateRestarting:
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", id))
	case container.StateRunning, container.StatePaused:
		if donor.rec.State.Pid > 0 {
			return donor, nil
		}
	}
	return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", id))
}

// ipcDonor is the process and the /dev/shm of the container whose IPC
// namespace c joins.
func (s *Service) ipcDonor(c *ctr, id string) (pid int, shm string, _ error) {
	donor, err := s.runningDonor(c, id)
	if err != nil {
		return 0, "", err
	}
	shm, err = s.shareableShm(donor, 0)
	if err != nil {
		return 0, "", fmt.Errorf("container %s: %w", id, err)
	}
	if shm == "" {
		return 0, "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", id))
	}
	donor.mu.Lock()
	pid = donor.rec.State.Pid
	donor.mu.Unlock()
	return pid, shm, nil
}

// shareableShm is the host directory that is a running container's
// /dev/shm, or "" when its IPC namespace cannot be shared (private, none,
// or its own mount at /dev/shm). A container that joined another's IPC
// shares that one's.
func (s *Service) shareableShm(donor *ctr, depth int) (string, error) {
	donor.mu.Lock()
	rec := donor.rec
	mode, id, own := rec.HostConfig.IpcMode, rec.ID, hasMountFor(rec, "/dev/shm")
	donor.mu.Unlock()
	switch {
	case mode.IsHost():
		return "/dev/shm", nil
	case mode.IsContainer() && depth < 8:
		next, err := s.lookup(mode.Container())
		if err != nil {
			return "", nil
		}
		return s.shareableShm(next, depth+1)
	case (mode.IsShareable() || mode.IsEmpty()) && !own:
		dir := s.shmDir(id)
		st, err := os.Stat(dir)
		switch {
		case err == nil && st.IsDir():
			return dir, nil
		case err == nil || errors.Is(err, os.ErrNotExist):
			return "", nil
		}
		return "", err
	}
	return "", nil
}

// hasMountFor says whether the container mounts something of its own at dest.
func hasMountFor(rec *Record, dest string) bool {
	if _, ok := rec.HostConfig.Tmpfs[dest]; ok {
		return true
	}
	for _, m := range rec.Mounts {
		if filepath.Clean(m.Spec.Destination) == dest {
			return true
		}
	}
	return false
}

func shmMount(dir string) specs.Mount {
	return specs.Mount{Destination: "/dev/shm", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate"}}
}

// mountShm mounts a fresh tmpfs of size bytes at dir, replacing one left by
// a start or teardown that was cut short.
func mountShm(dir string, size int64) error {
	unmountShm(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if size <= 0 {
		size = 64 << 20 // dockerd's default; a tmpfs of size 0 would be unlimited
	}
	data := "mode=1777,size=" + strconv.FormatInt(size, 10)
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("mounting shm tmpfs: %w", err)
	}
	return nil
}

// unmountShm unmounts every tmpfs stacked at dir and removes it; a
// directory that is not mounted is only removed.
func unmountShm(dir string) {
	for i := 0; i < 8; i++ {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			break
		}
	}
	_ = os.Remove(dir)
}
