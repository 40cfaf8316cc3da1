package volume

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func stat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	assert.NilError(t, unix.Lstat(p, &st))
	return st
}

// copyUp runs CopyUp between two paths, as handles.
func copyUp(t *testing.T, src, vol string) error {
	t.Helper()
	sf, err := os.OpenFile(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	assert.NilError(t, err)
	defer sf.Close()
	vf, err := os.OpenFile(vol, unix.O_PATH|unix.O_CLOEXEC, 0)
	assert.NilError(t, err)
	defer vf.Close()
	return CopyUp(sf, vf)
}

func TestCopyUp(t *testing.T) {
	requireRoot(t)
	src := filepath.Join(t.TempDir(), "data")
	assert.NilError(t, os.Mkdir(src, 0o750))
	assert.NilError(t, os.Chown(src, 999, 998))
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o700))
	assert.NilError(t, os.Chown(filepath.Join(src, "sub"), 1000, 1000))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "sub", "deep", "file"), []byte("content"), 0o640))
	assert.NilError(t, os.Chown(filepath.Join(src, "sub", "deep", "file"), 1001, 1002))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "suid"), []byte("#!"), 0o755))
	xattrOK := unix.Setxattr(filepath.Join(src, "suid"), "user.berth", []byte("yes"), 0) == nil
	assert.NilError(t, unix.Chmod(filepath.Join(src, "suid"), 0o4755))
	assert.NilError(t, os.Link(filepath.Join(src, "suid"), filepath.Join(src, "hardlink")))
	assert.NilError(t, os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	assert.NilError(t, os.Symlink("sub/deep/file", filepath.Join(src, "rel-link")))
	assert.NilError(t, unix.Lchown(filepath.Join(src, "rel-link"), 1003, 1003))
	assert.NilError(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	assert.NilError(t, os.Chtimes(filepath.Join(src, "sub", "deep", "file"), old, old))
	assert.NilError(t, os.Chtimes(filepath.Join(src, "sub"), old, old))

	vol := filepath.Join(t.TempDir(), "_data")
	assert.NilError(t, os.Mkdir(vol, 0o755))
	assert.NilError(t, copyUp(t, src, vol))

	// the volume root takes the image directory's owner and mode
	st := stat(t, vol)
	assert.Equal(t, st.Uid, uint32(999))
	assert.Equal(t, st.Gid, uint32(998))
	assert.Equal(t, st.Mode&0o7777, uint32(0o750))

	st = stat(t, filepath.Join(vol, "sub"))
	assert.Equal(t, st.Uid, uint32(1000))
	assert.Equal(t, st.Mode&0o7777, uint32(0o700))
	assert.Equal(t, st.Mtim.Sec, old.Unix(), "directory times survive their children being copied")
	b, err := os.ReadFile(filepath.Join(vol, "sub", "deep", "file"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "content")
	st = stat(t, filepath.Join(vol, "sub", "deep", "file"))
	assert.Equal(t, st.Uid, uint32(1001))
	assert.Equal(t, st.Gid, uint32(1002))
	assert.Equal(t, st.Mode&0o7777, uint32(0o640))
	assert.Equal(t, st.Mtim.Sec, old.Unix())

	st = stat(t, filepath.Join(vol, "suid"))
	assert.Equal(t, st.Mode&0o7777, uint32(0o4755), "setuid survives chown")
	assert.Equal(t, stat(t, filepath.Join(vol, "hardlink")).Ino, st.Ino, "hard links stay links")
	if xattrOK {
		val := make([]byte, 16)
		n, err := unix.Getxattr(filepath.Join(vol, "suid"), "user.berth", val)
		assert.NilError(t, err)
		assert.Equal(t, string(val[:n]), "yes")
	}

	target, err := os.Readlink(filepath.Join(vol, "abs-link"))
	assert.NilError(t, err)
	assert.Equal(t, target, "/etc/passwd", "symlinks are copied, not followed")
	st = stat(t, filepath.Join(vol, "rel-link"))
	assert.Equal(t, st.Mode&unix.S_IFMT, uint32(unix.S_IFLNK))
	assert.Equal(t, st.Uid, uint32(1003))
	assert.Equal(t, stat(t, filepath.Join(vol, "fifo")).Mode&unix.S_IFMT, uint32(unix.S_IFIFO))
}

func TestCopyUpSkips(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(src, "image-file"), []byte("x"), 0o644))

	// a volume with data is left alone
	vol := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(vol, "mine"), []byte("y"), 0o600))
	assert.NilError(t, os.Chmod(vol, 0o700))
	assert.NilError(t, copyUp(t, src, vol))
	entries, err := os.ReadDir(vol)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 1))
	assert.Equal(t, stat(t, vol).Mode&0o7777, uint32(0o700))

	// a missing image directory, a file there, a path through a file:
	// nothing to copy
	empty := t.TempDir()
	into, err := os.Open(empty)
	assert.NilError(t, err)
	defer into.Close()
	svc := &Service{}
	for _, p := range []string{"/missing", "/image-file", "/image-file/x"} {
		assert.NilError(t, svc.CopyUp(src, p, into), p)
	}
	// a file where the volume would be (a file subpath): nothing either
	assert.NilError(t, os.Mkdir(filepath.Join(src, "dir"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "dir", "f"), nil, 0o644))
	file, err := os.Open(filepath.Join(vol, "mine"))
	assert.NilError(t, err)
	defer file.Close()
	assert.NilError(t, svc.CopyUp(src, "/dir", file))
	entries, err = os.ReadDir(empty)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))
}

func TestCopyUpFromResolvesInsideRootfs(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	rootfs := t.TempDir()
	// /data is a symlink that points out of the rootfs; it must resolve
	// to <rootfs>/etc/secret-dir, never to the host's /etc
	assert.NilError(t, os.MkdirAll(filepath.Join(rootfs, "etc", "secret-dir"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(rootfs, "etc", "secret-dir", "inside"), []byte("ok"), 0o644))
	assert.NilError(t, os.Symlink("/etc/secret-dir", filepath.Join(rootfs, "data")))
	v, err := e.svc.Create(ctx, CreateRequest{Name: "cp"})
	assert.NilError(t, err)
	into, err := os.Open(v.Mountpoint)
	assert.NilError(t, err)
	defer into.Close()
	assert.NilError(t, e.svc.CopyUp(rootfs, "/data", into))
	b, err := os.ReadFile(filepath.Join(v.Mountpoint, "inside"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "ok")
}

// Another container using the volume swaps each entry copy-up makes for a
// symlink to a host directory, right after it is made: copy-up fails or
// writes inside the volume, and never touches the host directory (issue 13
// item 2).
func TestCopyUpSymlinkSwaps(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "dir", "sub", "f"), []byte("image"), 0o4755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "file"), []byte("image"), 0o777))
	assert.NilError(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o666))
	assert.NilError(t, os.Symlink("target", filepath.Join(src, "link")))
	assert.NilError(t, os.Chown(filepath.Join(src, "dir"), 1234, 1234))

	for _, victim := range []string{"dir", "sub", "f", "file", "fifo", "link"} {
		t.Run(victim, func(t *testing.T) {
			host := t.TempDir()
			assert.NilError(t, os.Chmod(host, 0o700))
			assert.NilError(t, os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o600))
			before := stat(t, host)
			orig := createdHook
			createdHook = func(dir *os.File, name string) {
				if name != victim {
					return
				}
				// the container renames the new entry away and plants a
				// symlink to the host in its place
				assert.NilError(t, unix.Renameat(int(dir.Fd()), name, int(dir.Fd()), name+".moved"))
				assert.NilError(t, unix.Symlinkat(host, int(dir.Fd()), name))
			}
			t.Cleanup(func() { createdHook = orig })
			vol := t.TempDir()
			_ = copyUp(t, src, vol) // may fail: what matters is the host

			entries, err := os.ReadDir(host)
			assert.NilError(t, err)
			assert.Check(t, is.Len(entries, 1), "nothing made in the host directory")
			after := stat(t, host)
			assert.Check(t, is.Equal(after.Mode, before.Mode), "host directory mode")
			assert.Check(t, is.Equal(after.Uid, before.Uid), "host directory owner")
			assert.Check(t, is.Equal(after.Mtim, before.Mtim), "host directory times")
			st := stat(t, filepath.Join(host, "secret"))
			assert.Check(t, is.Equal(st.Mode&0o7777, uint32(0o600)), "host file mode")
			assert.Check(t, is.Equal(st.Uid, uint32(0)), "host file owner")
		})
	}
}
