package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berth/registry/imagefs"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
)

// What a daemon killed mid-operation leaves in the layer store, and how a
// start finds it: root filesystems of creates that never got a container
// record (the runtime asks for the list and removes them), and layers of a
// pull or load cut before its image was written (containers/image commits
// layers as they arrive and creates the image, with its manifest and
// config, in one step at the end). containers/storage itself deletes
// layers left flagged incomplete.

// Rootfs is one container root filesystem in the store (imagefs.Rootfs).
type Rootfs = imagefs.Rootfs

// Rootfses lists the container root filesystems in the store.
func (s *Service) Rootfses(ctx context.Context) ([]Rootfs, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list root filesystems: %w", err)
	}
	layers, err := s.store.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	byID := make(map[string]storage.Layer, len(layers))
	for _, l := range layers {
		byID[l.ID] = l
	}
	// A daemon killed between the mount and the store's note of it leaves
	// a mount the store does not count: look at the mount table too.
	points := mountPoints()
	driverHome := filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName())
	out := make([]Rootfs, 0, len(ctrs))
	for _, c := range ctrs {
		l := byID[c.LayerID]
		rf := Rootfs{ContainerID: c.ID}
		counted := l.MountCount > 0 && l.MountPoint != ""
		switch {
		case counted && points[filepath.Clean(l.MountPoint)]:
			rf.Mounted, rf.MountPath = true, l.MountPoint
		case counted:
			rf.Mounted, rf.StaleMount = true, true
		default:
			rf.Mounted = points[filepath.Join(driverHome, c.LayerID, "merged")]
		}
		out = append(out, rf)
	}
	return out, nil
}

// mountPoints is the set of mount points of the host (this mount namespace).
func mountPoints() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out[f[4]] = true
		}
	}
	return out
}

// RemoveOrphanLayers deletes the layers no image and no container root
// filesystem uses: what an interrupted pull or load left behind; and the
// layer directories no layer record names: a volatile layer's, whose
// records (written without fsync, see rootfs.go) a host crash lost. Call
// it at start, before any pull, load or create can be in flight. It
// returns the number of layers and directories removed.
func (s *Service) RemoveOrphanLayers(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.removeOrphanLayers()
	return n + s.removeUnrecordedLayerDirs(), err
}

// removeUnrecordedLayerDirs deletes what of the store has no record:
// layer directories (with their short links and the kernel's
// incompat/volatile marker in them), container and image data
// directories. That is containers/storage's GarbageCollect; it returns
// how many layer directories went.
func (s *Service) removeUnrecordedLayerDirs() int {
	layerDirs := func() int {
		ents, _ := os.ReadDir(filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName()))
		n := 0
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 64 {
				n++
			}
		}
		return n
	}
	before := layerDirs()
	if err := s.store.GarbageCollect(); err != nil {
		logrus.WithError(err).Warn("remove layer directories without a record")
	}
	return max(before-layerDirs(), 0)
}

func (s *Service) removeOrphanLayers() (int, error) {
	layers, err := s.store.Layers()
	if err != nil {
		return 0, fmt.Errorf("list layers: %w", err)
	}
	images, err := s.store.Images()
	if err != nil {
		return 0, fmt.Errorf("list images: %w", err)
	}
	ctrs, err := s.store.Containers()
	if err != nil {
		return 0, fmt.Errorf("list root filesystems: %w", err)
	}
	orphans := orphanLayers(layers, images, ctrs)
	removed := 0
	// children before parents: a layer with a child cannot be deleted
	for len(orphans) > 0 {
		progress := false
		for id := range orphans {
			if hasChild(orphans, id) {
				continue
			}
			if err := s.store.DeleteLayer(id); err != nil {
				logrus.WithError(err).Warnf("remove orphan layer %s", ShortID(id))
			} else {
				removed++
			}
			delete(orphans, id)
			progress = true
		}
		if !progress {
			break
		}
	}
	return removed, nil
}

// orphanLayers are the layers (id -> parent) that are neither an image's
// layer nor a container's, nor an ancestor of one.
func orphanLayers(layers []storage.Layer, images []storage.Image, ctrs []storage.Container) map[string]string {
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	for _, img := range images {
		mark(img.TopLayer)
		for _, l := range img.MappedTopLayers {
			mark(l)
		}
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	out := map[string]string{}
	for _, l := range layers {
		if !used[l.ID] {
			out[l.ID] = l.Parent
		}
	}
	return out
}

func hasChild(layers map[string]string, id string) bool {
	for _, p := range layers {
		if p == id {
			return true
		}
	}
	return false
}
