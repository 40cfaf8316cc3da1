package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/moby/moby/api/types/container"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// RootfsChanges lists what the container changed in its root filesystem
// relative to its image (docker diff): the writable layer against its
// parent, sorted by path. Unknown containers are ErrNotFound.
func (s *Service) RootfsChanges(ctx context.Context, containerID string) ([]container.FilesystemChange, error) {
	c, err := s.store.Container(containerID)
	if err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) {
			return nil, noSuchRootfs(containerID)
		}
		return nil, err
	}
	changes, err := s.store.Changes("", c.LayerID)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", ShortID(containerID), err)
	}
	out := make([]container.FilesystemChange, 0, len(changes))
	for _, ch := range changes {
		var kind container.ChangeType
		switch ch.Kind {
		case archive.ChangeAdd:
			kind = container.ChangeAdd
		case archive.ChangeDelete:
			kind = container.ChangeDelete
		default:
			kind = container.ChangeModify
		}
		out = append(out, container.FilesystemChange{Kind: kind, Path: ch.Path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
