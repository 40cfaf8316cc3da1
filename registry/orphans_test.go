package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
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

// What the restore of a running container finds of its root filesystem:
// mounted where the store counts it (adopted as it is: MountPath), or
// counted but unmounted behind the store's back (StaleMount). It also pins
// down what containers/storage's Mount does in both cases, which is why
// the restore does not simply mount again: on a mounted layer it adds one
// to the count (and writes mountpoints.json), on a stale count it mounts
// and adds one too, so a count is only right after the stale one is reset.
func TestRootfsesAdoptableMounts(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	id := strings.Repeat("d", 64)
	assert.NilError(t, s.CreateRootfs(ctx, id, img, imagefs.RootfsOptions{}))
	t.Cleanup(func() { _ = s.RemoveRootfs(ctx, id) })
	find := func() Rootfs {
		t.Helper()
		rs, err := s.Rootfses(ctx)
		assert.NilError(t, err)
		assert.Assert(t, is.Len(rs, 1))
		return rs[0]
	}
	count := func() int {
		t.Helper()
		n, err := s.store.Mounted(id)
		assert.NilError(t, err)
		return n
	}
	assert.Check(t, is.DeepEqual(find(), Rootfs{ContainerID: id}))

	dir, err := s.MountRootfs(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(find(), Rootfs{ContainerID: id, Mounted: true, MountPath: dir}))
	again, err := s.MountRootfs(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again, dir))
	assert.Check(t, is.Equal(count(), 2), "the store's Mount of a mounted layer counts it again")
	assert.NilError(t, s.UnmountRootfs(ctx, id))
	assert.Check(t, is.Equal(count(), 0))

	_, err = s.MountRootfs(ctx, id)
	assert.NilError(t, err)
	assert.NilError(t, unix.Unmount(dir, unix.MNT_DETACH)) // by hand, behind the store's back
	assert.Check(t, is.DeepEqual(find(), Rootfs{ContainerID: id, Mounted: true, StaleMount: true}))
	_, err = s.MountRootfs(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, mountPoints()[dir])
	assert.Check(t, is.Equal(count(), 2), "the store's Mount over a stale count adds to it")

	// the restore's way: reset the stale count, then mount
	assert.NilError(t, unix.Unmount(dir, unix.MNT_DETACH))
	assert.NilError(t, s.UnmountRootfs(ctx, id))
	assert.Check(t, is.Equal(count(), 0))
	_, err = s.MountRootfs(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(count(), 1))
	assert.Check(t, is.DeepEqual(find(), Rootfs{ContainerID: id, Mounted: true, MountPath: dir}))
	assert.NilError(t, s.UnmountRootfs(ctx, id))
	assert.Check(t, !mountPoints()[dir], "still mounted")
}

// A layer directory no record names (a volatile layer whose records a host
// crash lost, with the kernel's marker in it) goes at the next start, with
// its short link; the layers of images and container root filesystems stay.
func TestRemoveOrphanLayersUnrecordedDirs(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	kept := strings.Repeat("e", 64)
	assert.NilError(t, s.CreateRootfs(ctx, kept, img, imagefs.RootfsOptions{Volatile: true}))
	home := filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName())
	lost := filepath.Join(home, strings.Repeat("f", 64))
	assert.NilError(t, os.MkdirAll(filepath.Join(lost, "work", "work", "incompat", "volatile", "dirty"), 0o700))
	assert.NilError(t, os.MkdirAll(filepath.Join(lost, "diff"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(lost, "link"), []byte("LOSTLINKLOSTLINKLOSTLINK00"), 0o644))
	link := filepath.Join(home, "l", "LOSTLINKLOSTLINKLOSTLINK00")
	assert.NilError(t, os.Symlink("../"+filepath.Base(lost)+"/diff", link))
	layersBefore, err := s.store.Layers()
	assert.NilError(t, err)

	n, err := s.RemoveOrphanLayers(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, 1))
	_, err = os.Stat(lost)
	assert.Check(t, os.IsNotExist(err), "the unrecorded layer directory is left")
	_, err = os.Lstat(link)
	assert.Check(t, os.IsNotExist(err), "its short link is left")
	layers, err := s.store.Layers()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(len(layers), len(layersBefore)))
	dir, err := s.MountRootfs(ctx, kept)
	assert.NilError(t, err, "the kept root filesystem")
	assert.Check(t, mountPoints()[dir])
	assert.NilError(t, s.RemoveRootfs(ctx, kept))
}

// A root filesystem whose mount point is not what the store's unmount
// expects: mounts stacked on the overlay (a tmpfs, then two: the rename of
// the mount point fails with EBUSY), or the overlay gone behind the store's
// back and files made in the bare mount point (what a monitor's late `runc
// create` does: ENOTEMPTY). RemoveRootfs clears the mount point and
// succeeds, and leaves no mount.
func TestRemoveRootfsUnexpectedMountPoint(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	for round, stack := range []func(t *testing.T, dir string){
		func(t *testing.T, dir string) { assert.NilError(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")) },
		func(t *testing.T, dir string) {
			for i := 0; i < 2; i++ {
				assert.NilError(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"))
			}
		},
		func(t *testing.T, dir string) {
			assert.NilError(t, unix.Unmount(dir, unix.MNT_DETACH))
			for _, d := range []string{"proc", "dev/pts", "etc"} {
				assert.NilError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
			}
			assert.NilError(t, os.WriteFile(filepath.Join(dir, "etc", "hosts"), nil, 0o644))
		},
	} {
		id := strings.Repeat(string(rune('e'+round)), 64)
		assert.NilError(t, s.CreateRootfs(ctx, id, img, imagefs.RootfsOptions{}))
		dir, err := s.MountRootfs(ctx, id)
		assert.NilError(t, err)
		stack(t, dir)
		t.Cleanup(func() {
			for mountPoints()[dir] {
				if unix.Unmount(dir, unix.MNT_DETACH) != nil {
					break
				}
			}
		})
		assert.NilError(t, s.RemoveRootfs(ctx, id), "round %d", round)
		assert.Check(t, !mountPoints()[dir], "round %d: still mounted", round)
		_, err = s.store.Container(id)
		assert.Check(t, errors.Is(err, storage.ErrContainerUnknown), "round %d: %v", round, err)
	}
}

// Removing a root filesystem that its teardown unmounted rewrites the
// store's record of mounts (every mounted layer: O(n) with n running) no
// more often than the store's own DeleteContainer does, and removes it; a
// mounted one is unmounted first.
func TestRemoveUnmountedRootfsWritesMountsOnce(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	twin, id, other := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, c := range []string{twin, id, other} {
		assert.NilError(t, s.CreateRootfs(ctx, c, img, imagefs.RootfsOptions{Volatile: true}))
		_, err := s.MountRootfs(ctx, c)
		assert.NilError(t, err)
		assert.NilError(t, s.UnmountRootfs(ctx, c))
	}
	dir := filepath.Join(s.store.RunRoot(), s.store.GraphDriverName()+"-layers")
	rewrites := func(remove func() error) int {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		assert.NilError(t, err)
		defer unix.Close(fd)
		_, err = unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
		assert.NilError(t, err)
		assert.NilError(t, remove())
		n := 0
		buf := make([]byte, 64<<10)
		for {
			k, err := unix.Read(fd, buf)
			if k <= 0 || err != nil {
				return n
			}
			for off := 0; off+unix.SizeofInotifyEvent <= k; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				if unix.ByteSliceToString(name) == "mountpoints.json" {
					n++
				}
				off += unix.SizeofInotifyEvent + len(name)
			}
		}
	}
	store := rewrites(func() error { return s.store.DeleteContainer(twin) })
	ours := rewrites(func() error { return s.RemoveRootfs(ctx, id) })
	assert.Check(t, is.Equal(ours, store), "the mount record written %d times, the store's DeleteContainer alone writes it %d", ours, store)
	_, err := s.store.Container(id)
	assert.Check(t, errors.Is(err, storage.ErrContainerUnknown), "%v", err)

	mounted, err := s.MountRootfs(ctx, other)
	assert.NilError(t, err)
	_, err = s.MountRootfs(ctx, other)
	assert.NilError(t, err)
	assert.NilError(t, s.RemoveRootfs(ctx, other), "mounted twice")
	assert.Check(t, !mountPoints()[mounted], "still mounted")
	_, err = s.store.Container(other)
	assert.Check(t, errors.Is(err, storage.ErrContainerUnknown), "%v", err)
}
