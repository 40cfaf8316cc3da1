// Package execroot keeps berthd's exec root in memory.
//
// The exec root (/run/berth) holds what lives only as long as the host's
// boot: the monitors' state directories and sockets, the OCI runtime's
// state, the layer store's mount records, network namespaces. A host
// normally has /run on a tmpfs, and berth relies on that twice: the files
// are written on every start and exit (a disk filesystem's inode allocation
// and journal cost ~7 ms of each `docker run --rm` on ext4 here), and a
// reboot must leave none of them behind. Where /run is a disk filesystem
// (some containers and VMs), berthd mounts a tmpfs on an empty exec root
// itself. An exec root that is not empty is left as it is: it may hold the
// state of containers still running (an earlier berthd on this boot).
package execroot

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Prepare makes dir and, when it is not already in memory (tmpfs or ramfs)
// and is empty, mounts a tmpfs on it (mode 0711, nosuid, nodev: as /run).
// mounted says whether it did. Two daemons preparing the same directory at
// once mount it once (a lock on the directory).
func Prepare(dir string) (mounted bool, err error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return false, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("exec root %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		// a filesystem without locks (some network ones) is no reason to
		// refuse to start: the exec root stays as it is
		return false, nil
	}
	inMemory, err := InMemory(dir)
	if err != nil || inMemory {
		return false, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("exec root %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return false, nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711"); err != nil {
		return false, fmt.Errorf("mount a tmpfs on exec root %s: %w", dir, err)
	}
	return true, nil
}

// Undo unmounts the tmpfs Prepare mounted on dir, with whatever is mounted
// under it, for a daemon whose start failed before it made anything there
// that must outlive it.
func Undo(dir string) error {
	return unix.Unmount(dir, unix.MNT_DETACH)
}

// InMemory says whether dir is on a tmpfs or ramfs.
func InMemory(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("exec root %s: %w", dir, err)
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC, nil
}
