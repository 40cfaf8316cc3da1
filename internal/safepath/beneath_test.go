package safepath

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// tree makes a volume-like directory with symlinks a container could plant.
func tree(t *testing.T) (base, outside string) {
	t.Helper()
	top := t.TempDir()
	base = filepath.Join(top, "base")
	outside = filepath.Join(top, "outside")
	for _, d := range []string{filepath.Join(base, "dir", "sub"), filepath.Join(base, "nested"), outside} {
		assert.NilError(t, os.MkdirAll(d, 0o755))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(base, "dir", "f"), []byte("in"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(base, "file"), []byte("x"), 0o644))
	links := map[string]string{
		"good":        "dir",
		"nested/link": "../dir",
		"nested/deep": "../good/sub",
		"abs":         outside,
		"root":        "/",
		"up":          "..",
		"climb":       "dir/../../outside",
		"loop":        "loop",
		"dangling":    "nope",
	}
	for name, target := range links {
		assert.NilError(t, os.Symlink(target, filepath.Join(base, name)))
	}
	return base, outside
}

func inode(t *testing.T, path string) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	assert.NilError(t, unix.Stat(path, &st))
	return [2]uint64{st.Dev, st.Ino}
}

func TestOpenBeneath(t *testing.T) {
	base, _ := tree(t)
	ok := map[string]string{ // subpath -> what it must open
		"":               base,
		".":              base,
		"dir":            filepath.Join(base, "dir"),
		"dir/f":          filepath.Join(base, "dir", "f"),
		"good":           filepath.Join(base, "dir"),
		"good/f":         filepath.Join(base, "dir", "f"),
		"nested/link/f":  filepath.Join(base, "dir", "f"),
		"nested/deep":    filepath.Join(base, "dir", "sub"),
		"dir/../good":    filepath.Join(base, "dir"),
		"../../dir":      filepath.Join(base, "dir"), // lexically cleaned first
		"/dir/sub/../f":  filepath.Join(base, "dir", "f"),
		"file":           filepath.Join(base, "file"),
		"nested/../file": filepath.Join(base, "file"),
	}
	escaping := []string{"abs", "abs/x", "root", "root/etc", "up", "climb", "good/../up"}
	missing := []string{"nope", "dangling", "loop", "file/x", "dir/nope/x"}

	for _, impl := range []string{"openat2", "walk"} {
		t.Run(impl, func(t *testing.T) {
			if impl == "walk" {
				orig := openat2
				openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
				t.Cleanup(func() { openat2 = orig })
			}
			for sub, want := range ok {
				f, err := OpenBeneath(base, sub)
				assert.NilError(t, err, sub)
				var st unix.Stat_t
				assert.NilError(t, unix.Fstat(int(f.Fd()), &st))
				assert.Equal(t, [2]uint64{st.Dev, st.Ino}, inode(t, want), sub)
				f.Close()
			}
			for _, sub := range escaping {
				_, err := OpenBeneath(base, sub)
				assert.Check(t, errdefs.IsInvalidArgument(err), "%s: %v", sub, err)
				assert.ErrorContains(t, err, "path concatenation escapes the base directory, base: "+base+", subpath: ")
			}
			for _, sub := range missing {
				_, err := OpenBeneath(base, sub)
				assert.Check(t, errdefs.IsNotFound(err), "%s: %v", sub, err)
				assert.ErrorContains(t, err, "cannot access path "+base)
			}
		})
	}
	_, err := OpenBeneath(filepath.Join(base, "good"), "f")
	assert.Check(t, errdefs.IsNotFound(err), "a base that is a symlink: %v", err)
}

func TestMountpoint(t *testing.T) {
	base, outside := tree(t)
	root, err := OpenRoot(base)
	assert.NilError(t, err)
	defer root.Close()
	cases := []struct {
		path string
		dir  bool
		want string // where it must be made, inside base
	}{
		{"/new/dir", true, "new/dir"},
		{"/new/file", false, "new/file"},
		{"/abs/made", true, ""},                 // a link dangling in the root is not made through
		{"/root/etc/hosts", false, "etc/hosts"}, // / of the root
		{"/up/x", true, "x"},
		{"/dir/f", false, "dir/f"}, // exists
	}
	for _, tc := range cases {
		f, err := Mountpoint(root, tc.path, tc.dir)
		if tc.want == "" {
			assert.Check(t, err != nil, tc.path)
			continue
		}
		assert.NilError(t, err, "%s", tc.path)
		var st unix.Stat_t
		assert.NilError(t, unix.Fstat(int(f.Fd()), &st))
		f.Close()
		assert.Equal(t, [2]uint64{st.Dev, st.Ino}, inode(t, filepath.Join(base, tc.want)), "%s", tc.path)
		assert.Equal(t, st.Mode&unix.S_IFMT == unix.S_IFDIR, tc.dir, tc.path)
	}
	entries, err := os.ReadDir(outside)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0, "nothing made outside the root")
}
