package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// mountOptions are the super-block options of the mount at dir ("" when
// nothing is mounted there).
func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	assert.NilError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return f[len(f)-1]
		}
	}
	return ""
}

// A --rm container's layer is volatile: mounted without a sync on unmount,
// recorded in the store's volatile files (not fsynced); any other
// container's is durable, as Docker's. Both mount again after the work
// directory's incompat/volatile marker a host crash leaves, and both are
// removed without a trace.
func TestVolatileRootfs(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	rm, keep := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	assert.NilError(t, s.CreateRootfs(ctx, rm, img, imagefs.RootfsOptions{Volatile: true}))
	assert.NilError(t, s.CreateRootfs(ctx, keep, img, imagefs.RootfsOptions{}))

	graph := s.store.GraphRoot()
	read := func(file string) string {
		b, err := os.ReadFile(filepath.Join(graph, file))
		if os.IsNotExist(err) {
			return ""
		}
		assert.NilError(t, err)
		return string(b)
	}
	assert.Check(t, strings.Contains(read("overlay-containers/volatile-containers.json"), rm))
	assert.Check(t, !strings.Contains(read("overlay-containers/containers.json"), rm))
	assert.Check(t, strings.Contains(read("overlay-containers/containers.json"), keep))
	assert.Check(t, !strings.Contains(read("overlay-containers/volatile-containers.json"), keep))

	for _, c := range []struct {
		id       string
		volatile bool
	}{{rm, true}, {keep, false}} {
		dir, err := s.MountRootfs(ctx, c.id)
		assert.NilError(t, err)
		opts := mountOptions(t, dir)
		assert.Check(t, strings.Contains(opts, "upperdir="), "%s: %q", c.id[:4], opts)
		// shown as "volatile" or, since Linux 6.6, "fsync=volatile"
		assert.Check(t, is.Equal(strings.Contains(opts, "volatile"), c.volatile), "%s: %q", c.id[:4], opts)
		assert.NilError(t, s.UnmountRootfs(ctx, c.id))
		assert.Check(t, is.Equal(mountOptions(t, dir), ""))

		// what a host crash leaves of a volatile mount: the kernel refuses
		// to mount the layer while the marker is there
		ctr, err := s.store.Container(c.id)
		assert.NilError(t, err)
		marker := filepath.Join(graph, "overlay", ctr.LayerID, "work", "work", "incompat", "volatile")
		assert.NilError(t, os.MkdirAll(marker, 0o700))
		dir, err = s.MountRootfs(ctx, c.id)
		assert.NilError(t, err)
		assert.Check(t, mountOptions(t, dir) != "")
		assert.NilError(t, s.RemoveRootfs(ctx, c.id))
		assert.Check(t, is.Equal(mountOptions(t, dir), ""))
		_, err = os.Stat(filepath.Join(graph, "overlay", ctr.LayerID))
		assert.Check(t, os.IsNotExist(err), "the layer directory is gone")
	}
	rfs, err := s.Rootfses(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(rfs, 0))
	assert.Check(t, !strings.Contains(read("overlay-containers/volatile-containers.json"), rm))
	assert.Check(t, !strings.Contains(read("overlay-layers/volatile-layers.json"), rm))
}
