package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthd/berth/registry/imagefs"
	"github.com/containerd/errdefs"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// Container root filesystems: a storage container record (a writable
// layer on top of the image's layers) whose ID is the container's 64-hex
// ID. The record is also how image removal sees which images are in use.
//
// The rule for syncing (issue 17, "Bulk removal"): the writable layer of a
// container whose contents nobody can need after it ends is volatile. That
// is a --rm (AutoRemove) container's, the rule Podman applies through the
// same library: such a layer is deleted when the container ends, and after
// a host crash berthd's restore removes the container anyway (it exited
// while the daemon was down). A volatile layer
//   - is mounted with overlay's "volatile" option, so its unmount does not
//     sync the upper file system (sync_filesystem of the whole file system
//     the data root is on: 137 to 149 ms of each `docker run --rm` on the
//     loaded machine, on the path the CLI waits for), and an fsync in the
//     container is a no-op;
//   - has its container and layer records in containers/storage's
//     volatile-containers.json and volatile-layers.json (in the graph root,
//     beside the durable ones), written without fsync.
// The kernel makes work/incompat/volatile/dirty in the layer's work
// directory at every volatile mount and leaves it after the unmount, clean
// or not (seen on Linux 6.18), and refuses to mount the layer while it is
// there; so the marker tells nothing about a crash. containers/storage
// deletes it before every mount of a layer (drivers/overlay get()), which
// is right only because the layer's contents are not needed after a host
// crash: berthd's restore removes every --rm container that does not run
// (as dockerd), it never mounts such a layer again. A host crash may also
// lose the volatile records themselves (not fsynced): the container's root
// filesystem is then unknown to the store, which RemoveRootfs takes as
// already removed, and the layer directory, marker and all, is what
// RemoveOrphanLayers' GarbageCollect deletes at the next daemon start
// (orphans.go; integration TestVolatileLayersAfterHostCrash).
// Every other container's layer is durable, as Docker's: its unmount syncs
// what the container wrote, and `docker commit` or `docker start` after a
// host crash find it.

func noSuchRootfs(id string) error {
	return errdefs.ErrNotFound.WithMessage("no root filesystem for container " + id)
}

// CreateRootfs creates the writable layer of container containerID on top
// of imageID (an image ID, "sha256:<hex>" or "<hex>"). An unknown image is
// ErrNotFound; an existing root filesystem for containerID is
// ErrAlreadyExists. opts.Volatile makes a volatile layer (above).
func (s *Service) CreateRootfs(ctx context.Context, containerID, imageID string, opts imagefs.RootfsOptions) error {
	id := strings.TrimPrefix(imageID, "sha256:")
	var copts *storage.ContainerOptions
	if opts.Volatile {
		copts = &storage.ContainerOptions{Volatile: true}
	}
	_, err := s.store.CreateContainer(containerID, nil, id, "", "", copts)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrImageUnknown), errors.Is(err, storage.ErrNotAnImage):
		return noSuchImage(imageID)
	case errors.Is(err, storage.ErrDuplicateID), errors.Is(err, storage.ErrDuplicateName):
		return errdefs.ErrAlreadyExists.WithMessage("root filesystem of container " + containerID + " already exists")
	}
	return fmt.Errorf("create root filesystem of %s: %w", ShortID(containerID), err)
}

// MountRootfs mounts the container's root filesystem (overlay of the
// image's layers and the writable layer) and returns the merged directory.
// Mounts are counted: each MountRootfs is matched by an UnmountRootfs, or
// one forced UnmountRootfs ends them all. Unknown containers are
// ErrNotFound.
func (s *Service) MountRootfs(ctx context.Context, containerID string) (string, error) {
	dir, err := s.store.Mount(containerID, "")
	if err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrLayerUnknown) {
			return "", noSuchRootfs(containerID)
		}
		return "", fmt.Errorf("mount root filesystem of %s: %w", ShortID(containerID), err)
	}
	return dir, nil
}

// UnmountRootfs unmounts the container's root filesystem however often it
// was mounted. Unmounting what is not mounted, or unknown, is not an error.
func (s *Service) UnmountRootfs(ctx context.Context, containerID string) error {
	_, err := s.store.Unmount(containerID, true)
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EBUSY) {
		// The store's one detach left its mount point busy (mounts stacked
		// on it: EBUSY) or not empty without a mount (ENOTEMPTY). The
		// latter was seen once, in a fresh-clone run of integration
		// TestKillDuringRun: berthd killed mid-start left a monitor that
		// had not opened its socket yet, the restart's reap could not reach
		// it and unmounted the root filesystem, and the monitor's `runc
		// create` then made its mount targets in the bare mount point. The
		// reap now stops such a monitor first (runtime's stopMonitor,
		// integration TestKillDuringLaunch); this stays for what else may
		// write there. What is in the bare directory is not the
		// container's (that is in the layer's diff directory): clear it and
		// let the store finish.
		if what := s.clearMountPoint(containerID); what != "" {
			logrus.Warnf("root filesystem of %s: %s", ShortID(containerID), what)
			_, err = s.store.Unmount(containerID, true)
		}
	}
	if err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) && !errors.Is(err, storage.ErrLayerNotMounted) {
		return fmt.Errorf("unmount root filesystem of %s: %w", ShortID(containerID), err)
	}
	return nil
}

// clearMountPoint detaches every mount at or below the container's mount
// point, then empties the directory if nothing is mounted there any more.
// It says what it did ("" for nothing).
func (s *Service) clearMountPoint(containerID string) string {
	c, err := s.store.Container(containerID)
	if err != nil {
		return ""
	}
	merged := filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName(), c.LayerID, "merged")
	detached := 0
	for ; detached < 64; detached++ {
		under := mountsAtOrUnder(merged)
		if len(under) == 0 {
			break
		}
		if err := unix.Unmount(under[0], unix.MNT_DETACH); err != nil {
			return fmt.Sprintf("unmount %s: %v", under[0], err)
		}
	}
	if len(mountsAtOrUnder(merged)) > 0 {
		return fmt.Sprintf("%d mounts detached from its mount point, more remain", detached)
	}
	entries, err := os.ReadDir(merged)
	if err != nil {
		return fmt.Sprintf("%d mounts detached from its mount point", detached)
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(merged, e.Name()))
	}
	return fmt.Sprintf("%d mounts detached from its mount point, %d entries removed from the bare directory", detached, len(entries))
}

// mountsAtOrUnder lists the mount points at or below dir, deepest first.
func mountsAtOrUnder(dir string) []string {
	var out []string
	for p := range mountPoints() {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// RemoveRootfs unmounts and deletes the container's root filesystem.
// Removing an unknown one is not an error.
func (s *Service) RemoveRootfs(ctx context.Context, containerID string) error {
	// A stopped container's root filesystem was unmounted by its teardown.
	// A forced unmount of what is not mounted would still have the driver
	// unmount it and the store rewrite its record of mounts (one entry per
	// mounted layer: O(n) with n running); DeleteContainer unmounts
	// whatever is still mounted.
	if n, err := s.store.Mounted(containerID); err != nil || n > 0 {
		if err := s.UnmountRootfs(ctx, containerID); err != nil {
			return err
		}
	}
	err := s.store.DeleteContainer(containerID)
	if err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrNotAContainer) {
		return fmt.Errorf("remove root filesystem of %s: %w", ShortID(containerID), err)
	}
	return nil
}

// RootfsSize is the size of what the container wrote to its root
// filesystem (ps --size's SizeRw) and of the whole of it, the image's layers
// included (SizeRootFs, "virtual"). Unknown containers are ErrNotFound.
func (s *Service) RootfsSize(ctx context.Context, containerID string) (rw, total int64, err error) {
	c, err := s.store.Container(containerID)
	if err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) {
			return 0, 0, noSuchRootfs(containerID)
		}
		return 0, 0, err
	}
	if rw, err = s.store.DiffSize("", c.LayerID); err != nil {
		return 0, 0, err
	}
	total = rw
	if img, err := s.store.Image(c.ImageID); err == nil {
		if in, err := s.info(img); err == nil {
			total += in.size
		}
	}
	return rw, total, nil
}
