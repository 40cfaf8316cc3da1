package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"go.podman.io/storage"
)

// Container root filesystems: a storage container record (a writable
// layer on top of the image's layers) whose ID is the container's 64-hex
// ID. The record is also how image removal sees which images are in use.

func noSuchRootfs(id string) error {
	return errdefs.ErrNotFound.WithMessage("no root filesystem for container " + id)
}

// CreateRootfs creates the writable layer of container containerID on top
// of imageID (an image ID, "sha256:<hex>" or "<hex>"). An unknown image is
// ErrNotFound; an existing root filesystem for containerID is
// ErrAlreadyExists.
func (s *Service) CreateRootfs(ctx context.Context, containerID, imageID string) error {
	id := strings.TrimPrefix(imageID, "sha256:")
	_, err := s.store.CreateContainer(containerID, nil, id, "", "", nil)
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
	if err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) && !errors.Is(err, storage.ErrLayerNotMounted) {
		return fmt.Errorf("unmount root filesystem of %s: %w", ShortID(containerID), err)
	}
	return nil
}

// RemoveRootfs unmounts and deletes the container's root filesystem.
// Removing an unknown one is not an error.
func (s *Service) RemoveRootfs(ctx context.Context, containerID string) error {
	if err := s.UnmountRootfs(ctx, containerID); err != nil {
		return err
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
