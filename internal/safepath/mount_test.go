package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// inMountNS runs fn on a thread of its own with a private mount namespace
// (a slave of the host's): every mount fn makes goes with the thread, which
// is never given back to the Go runtime.
func inMountNS(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mount tests need root")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
			t.Error(err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

func withoutNewMountAPI(t *testing.T) {
	orig := newMountAPI
	newMountAPI = func() bool { return false }
	t.Cleanup(func() { newMountAPI = orig })
}

func writable(path string) error {
	f, err := os.Create(filepath.Join(path, "probe"))
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func TestBind(t *testing.T) {
	for _, api := range []string{"new", "proc"} {
		t.Run(api, func(t *testing.T) {
			if api == "proc" {
				withoutNewMountAPI(t)
			}
			base, outside := tree(t)
			src := t.TempDir()
			assert.NilError(t, os.WriteFile(filepath.Join(src, "f"), []byte("src"), 0o644))
			inMountNS(t, func() {
				// a tmpfs below the source, to see what recursion brings
				assert.NilError(t, os.Mkdir(filepath.Join(src, "sub"), 0o755))
				assert.NilError(t, unix.Mount("tmpfs", filepath.Join(src, "sub"), "tmpfs", 0, ""))
				root, err := OpenRoot(base)
				assert.NilError(t, err)
				defer root.Close()
				sf, err := os.OpenFile(src, unix.O_PATH|unix.O_CLOEXEC, 0)
				assert.NilError(t, err)
				defer sf.Close()

				// through a symlink to the host: lands in the root
				assert.NilError(t, os.Symlink("/", filepath.Join(base, "toroot")))
				assert.NilError(t, Bind(sf, root, "/toroot/dir", BindOptions{Recursive: true, Private: true}))
				b, err := os.ReadFile(filepath.Join(base, "dir", "f"))
				assert.NilError(t, err)
				assert.Equal(t, string(b), "src")
				assert.NilError(t, writable(filepath.Join(base, "dir", "sub")), "recursive: the tmpfs came along")
				_, err = os.Stat(filepath.Join(outside, "f"))
				assert.Check(t, errors.Is(err, os.ErrNotExist))

				// a missing destination is made, in the root
				assert.NilError(t, Bind(sf, root, "/toroot/made/here", BindOptions{Private: true}))
				b, err = os.ReadFile(filepath.Join(base, "made", "here", "f"))
				assert.NilError(t, err)
				assert.Equal(t, string(b), "src")

				// read-only, the top only
				assert.NilError(t, Bind(sf, root, "/nested", BindOptions{Recursive: true, ReadOnly: true, Private: true}))
				assert.Check(t, errors.Is(writable(filepath.Join(base, "nested")), unix.EROFS))
				assert.NilError(t, writable(filepath.Join(base, "nested", "sub")))

				// read-only all the way down
				err = Bind(sf, root, "/dir/sub", BindOptions{Recursive: true, ReadOnly: true, RecursiveReadOnly: true, Private: true})
				if api == "proc" {
					assert.ErrorContains(t, err, "need Linux 5.12")
					return
				}
				assert.NilError(t, err)
				assert.Check(t, errors.Is(writable(filepath.Join(base, "dir", "sub")), unix.EROFS))
				assert.Check(t, errors.Is(writable(filepath.Join(base, "dir", "sub", "sub")), unix.EROFS))
			})
			// the thread and its mounts are gone
			b, err := os.ReadFile(filepath.Join(base, "dir", "f"))
			assert.NilError(t, err)
			assert.Equal(t, string(b), "in")
		})
	}
}

func TestPin(t *testing.T) {
	for _, api := range []string{"new", "proc"} {
		t.Run(api, func(t *testing.T) {
			if api == "proc" {
				withoutNewMountAPI(t)
			}
			base, outside := tree(t)
			pins := filepath.Join(t.TempDir(), "pins")
			inMountNS(t, func() {
				f, err := OpenBeneath(base, "good")
				assert.NilError(t, err)
				p, err := NewPin(f, pins)
				f.Close()
				assert.NilError(t, err)
				// the container swaps the directory for a link to the host
				assert.NilError(t, os.Rename(filepath.Join(base, "dir"), filepath.Join(base, "moved")))
				assert.NilError(t, os.Symlink(outside, filepath.Join(base, "dir")))
				b, err := os.ReadFile(filepath.Join(p.Path, "f"))
				assert.NilError(t, err)
				assert.Equal(t, string(b), "in", "the pin shows what was opened")

				file, err := OpenBeneath(base, "moved/f")
				assert.NilError(t, err)
				fp, err := NewPin(file, pins)
				file.Close()
				assert.NilError(t, err)
				b, err = os.ReadFile(fp.Path)
				assert.NilError(t, err)
				assert.Equal(t, string(b), "in")

				assert.NilError(t, p.Close())
				assert.NilError(t, p.Close(), "twice")
				// a pin left by a crash
				ReapPins(pins)
				entries, err := os.ReadDir(pins)
				assert.NilError(t, err)
				assert.Equal(t, len(entries), 0)
				b, err = os.ReadFile(filepath.Join(base, "moved", "f"))
				assert.NilError(t, err)
				assert.Equal(t, string(b), "in", "removing pins leaves the data")
			})
		})
	}
}
