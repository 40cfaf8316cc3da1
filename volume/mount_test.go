package volume

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// These tests mount for real: they need root, which `make unit` has.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mount tests need root (make unit runs as root)")
	}
}

func TestTmpfsVolume(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	v, err := e.svc.Create(ctx, CreateRequest{Name: "scratch", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,noexec"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, v.Options, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,noexec"})
	assert.Check(t, !isMounted(v.Mountpoint), "mounted only on first use")

	p, err := e.svc.Mount(ctx, "scratch", "c1")
	assert.NilError(t, err)
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	var st unix.Statfs_t
	assert.NilError(t, unix.Statfs(p, &st))
	assert.Equal(t, int64(st.Type), int64(unix.TMPFS_MAGIC))
	assert.Equal(t, int64(st.Blocks)*st.Bsize, int64(1<<20))
	assert.Check(t, st.Flags&unix.ST_NOEXEC != 0)

	// a second user shares the mount; the last one unmounts it
	_, err = e.svc.Mount(ctx, "scratch", "c2")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644))
	assert.NilError(t, e.svc.Unmount(ctx, "scratch", "c1"))
	assert.Check(t, isMounted(p))
	_, err = os.Stat(filepath.Join(p, "f"))
	assert.NilError(t, err)

	// a daemon restart keeps a mount that a container still uses
	e.reopen(t)
	assert.Check(t, isMounted(p))
	assert.NilError(t, e.svc.Unmount(ctx, "scratch", "c2"))
	assert.Check(t, !isMounted(p))
	_, err = os.Stat(filepath.Join(p, "f"))
	assert.Check(t, os.IsNotExist(err), "tmpfs content went with the mount")

	// a stale mount nobody uses is unmounted at restart
	_, err = e.svc.Mount(ctx, "scratch", "c3")
	assert.NilError(t, err)
	rec, err := e.svc.table.Get("scratch")
	assert.NilError(t, err)
	rec.Refs = nil
	assert.NilError(t, e.svc.table.Put("scratch", rec))
	e.reopen(t)
	assert.Check(t, !isMounted(p))

	assert.NilError(t, e.svc.Remove(ctx, "scratch", false))
	_, err = os.Stat(filepath.Dir(p))
	assert.Check(t, os.IsNotExist(err))
}

func TestBindStyleVolume(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	host := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(host, "hello"), []byte("hi"), 0o644))
	_, err := e.svc.Create(ctx, CreateRequest{Name: "hostdata", DriverOpts: map[string]string{"type": "none", "o": "bind,ro", "device": host}})
	assert.NilError(t, err)
	p, err := e.svc.Mount(ctx, "hostdata", "c1")
	assert.NilError(t, err)
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	b, err := os.ReadFile(filepath.Join(p, "hello"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "hi")
	err = os.WriteFile(filepath.Join(p, "new"), nil, 0o644)
	assert.Check(t, err != nil, "read-only bind")

	assert.NilError(t, e.svc.Unmount(ctx, "hostdata", "c1"))
	assert.Check(t, !isMounted(p))
	// removing the volume never touches the bound host directory
	assert.NilError(t, e.svc.Remove(ctx, "hostdata", false))
	_, err = os.Stat(filepath.Join(host, "hello"))
	assert.NilError(t, err)
}

func TestBindStyleVolumeMissingDevice(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	_, err := e.svc.Create(ctx, CreateRequest{Name: "broken", DriverOpts: map[string]string{"type": "none", "o": "bind", "device": "/nonexistent-berth-dir"}})
	assert.NilError(t, err, "dockerd only finds out at mount")
	_, err = e.svc.Mount(ctx, "broken", "c1")
	assert.ErrorContains(t, err, "failed to mount local volume: mount /nonexistent-berth-dir:")
	assert.ErrorContains(t, err, "no such file or directory")
	// a failed mount takes no ref
	assert.NilError(t, e.svc.Remove(ctx, "broken", false))
}

func TestParseMountOptions(t *testing.T) {
	cases := []struct {
		o     string
		flags uintptr
		data  string
	}{
		{"", 0, ""},
		{"size=1m", 0, "size=1m"},
		{"bind,ro", unix.MS_BIND | unix.MS_RDONLY, ""},
		{"rbind,nosuid,uid=1000,mode=0755", unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID, "uid=1000,mode=0755"},
		{"ro,rw,noexec,exec", 0, ""},
		{"addr=10.0.0.1,nfsvers=4", 0, "addr=10.0.0.1,nfsvers=4"},
	}
	for _, tc := range cases {
		flags, data := parseMountOptions(tc.o)
		assert.Equal(t, flags, tc.flags, tc.o)
		assert.Equal(t, data, tc.data, tc.o)
	}
}
