package registry

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

func TestOrphanLayers(t *testing.T) {
	layers := []storage.Layer{
		{ID: "base"}, {ID: "app", Parent: "base"}, // an image
		{ID: "rw", Parent: "app"},            // a container on it
		{ID: "p1"}, {ID: "p2", Parent: "p1"}, // a pull cut before its image was written
		{ID: "mapped-base"}, {ID: "mapped", Parent: "mapped-base"}, // an image's mapped top layer
	}
	images := []storage.Image{{ID: "img", TopLayer: "app", MappedTopLayers: []string{"mapped"}}}
	ctrs := []storage.Container{{ID: "c", LayerID: "rw"}}
	got := orphanLayers(layers, images, ctrs)
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	assert.DeepEqual(t, ids, []string{"p1", "p2"})
	assert.Assert(t, hasChild(got, "p1"))
	assert.Assert(t, !hasChild(got, "p2"))
}

// A root filesystem mounted by a start that was cut before the store noted
// the mount (here: a mount made behind the store's back) counts as
// mounted, and UnmountRootfs unmounts it.
func TestRootfsesSeeUncountedMounts(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	counted, uncounted, idle := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, id := range []string{counted, uncounted, idle} {
		assert.NilError(t, s.CreateRootfs(ctx, id, img, imagefs.RootfsOptions{}))
	}
	_, err := s.MountRootfs(ctx, counted)
	assert.NilError(t, err)
	c, err := s.store.Container(uncounted)
	assert.NilError(t, err)
	merged := filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName(), c.LayerID, "merged")
	assert.NilError(t, os.MkdirAll(merged, 0o755))
	assert.NilError(t, unix.Mount("tmpfs", merged, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })

	rs, err := s.Rootfses(ctx)
	assert.NilError(t, err)
	got := map[string]bool{}
	for _, r := range rs {
		got[r.ContainerID] = r.Mounted
	}
	assert.DeepEqual(t, got, map[string]bool{counted: true, uncounted: true, idle: false})
	assert.NilError(t, s.UnmountRootfs(ctx, uncounted))
	assert.Check(t, !mountPoints()[merged], "still mounted")
	assert.NilError(t, s.UnmountRootfs(ctx, counted))
}
