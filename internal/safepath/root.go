package safepath

import (
	"errors"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// OpenRoot opens a trusted directory (a container's root filesystem, a
// volume's data directory) as the root of later In-Root lookups.
func OpenRoot(dir string) (*os.File, error) {
	return os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// OpenInRoot opens path inside root as if root were "/": every symlink,
// absolute or relative, and every ".." is resolved within root, the last
// element included (openat2 RESOLVE_IN_ROOT, or pathrs-lite's emulation
// of it on old kernels). The handle is O_PATH; Reopen upgrades it.
func OpenInRoot(root *os.File, path string) (*os.File, error) {
	return pathrs.OpenatInRoot(root, path)
}

// Reopen opens what an O_PATH handle refers to with flags (O_RDONLY,
// O_DIRECTORY...), without resolving any path again.
func Reopen(f *os.File, flags int) (*os.File, error) {
	return pathrs.Reopen(f, flags)
}

// Mountpoint returns a handle to path inside root, creating it first when
// it is missing: a directory when dir, else an empty file, with its
// missing parents, as the OCI runtime does for a mount destination. An
// existing path is opened as it is (a mount over a file of another kind
// then fails at the mount, as it does in runc).
func Mountpoint(root *os.File, path string, dir bool) (*os.File, error) {
	path = filepath.Clean("/" + path)
	f, err := OpenInRoot(root, path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if dir {
		return pathrs.MkdirAllHandle(root, path, 0o755)
	}
	parent, err := pathrs.MkdirAllHandle(root, filepath.Dir(path), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	name := filepath.Base(path)
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	switch {
	case err == nil:
		unix.Close(fd)
	case !errors.Is(err, unix.EEXIST):
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	// made now or by someone else meanwhile: open it in the root again,
	// never through the name in the parent, which may be a symlink by now
	return OpenInRoot(root, path)
}
