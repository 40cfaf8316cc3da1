// Package safepath opens and mounts paths that a container can change.
//
// Anything under a container's root filesystem or under a volume can be
// swapped for a symlink at any moment by a process in a container. A path
// string resolved once (securejoin.SecureJoin, filepath.EvalSymlinks) and
// used again later (stat, mkdir, mount, chmod) can be redirected in
// between, out of the tree and onto the host. This package resolves such a
// path exactly once, in the kernel where it can (openat2 with
// RESOLVE_BENEATH or RESOLVE_IN_ROOT), and hands back a file descriptor;
// callers act on the descriptor (mount through it, copy from it), never on
// the path again. runc's and moby's safepath code do the same.
package safepath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// maxSymlinks is how many symlinks one resolution follows, as the kernel.
const maxSymlinks = 40

// openat2 is the syscall, a variable so tests can take the fallback that
// kernels before 5.6 need.
var openat2 = unix.Openat2

// OpenBeneath opens base/subpath as an O_PATH handle. subpath is resolved
// beneath base: symlinks in it are followed as long as they stay inside
// base, and a path that would leave base (an absolute symlink, "..", a
// relative symlink that climbs out) is refused with ErrInvalidArgument in
// dockerd's words ("path concatenation escapes the base directory"). A
// missing path, a symlink loop or a non-directory in the middle is
// ErrNotFound ("cannot access path ..."). Magic links (/proc/self/fd/N)
// are never followed. base itself is trusted and may not be a symlink.
func OpenBeneath(base, subpath string) (*os.File, error) {
	dir, err := os.OpenFile(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, notAccessible(base, err)
	}
	defer dir.Close()
	sub := filepath.Clean("/" + subpath)[1:]
	if sub == "" {
		return reopenPath(dir)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for range 16 {
		fd, err := openat2(int(dir.Fd()), sub, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), filepath.Join(base, sub)), nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue // a concurrent rename or mount: the kernel asks to retry
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			// no openat2 (Linux < 5.6, or a seccomp filter refusing it);
			// the walk finds real errors itself
			return walkBeneath(dir, base, sub)
		case errors.Is(err, unix.EXDEV):
			return nil, escapes(base, subpath)
		default:
			return nil, notAccessible(filepath.Join(base, sub), err)
		}
	}
	return nil, notAccessible(filepath.Join(base, sub), unix.EAGAIN)
}

// walkBeneath is OpenBeneath without openat2: one component at a time,
// never following a symlink in the kernel. ".." is taken lexically (back
// to a directory already held open), so a directory renamed meanwhile
// cannot lead out of base either.
func walkBeneath(dir *os.File, base, sub string) (*os.File, error) {
	stack := []*os.File{}
	defer func() {
		for _, f := range stack {
			f.Close()
		}
	}()
	cur := dir
	rest := strings.Split(sub, "/")
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return nil, escapes(base, sub)
			}
			stack[len(stack)-1].Close()
			stack = stack[:len(stack)-1]
			cur = dir
			if len(stack) > 0 {
				cur = stack[len(stack)-1]
			}
			continue
		}
		fd, err := unix.Openat(int(cur.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, notAccessible(filepath.Join(base, sub), err)
		}
		next := os.NewFile(uintptr(fd), name)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			next.Close()
			return nil, notAccessible(filepath.Join(base, sub), err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := readlinkat(cur, name)
			next.Close()
			if err != nil {
				return nil, notAccessible(filepath.Join(base, sub), err)
			}
			if links++; links > maxSymlinks {
				return nil, notAccessible(filepath.Join(base, sub), unix.ELOOP)
			}
			if filepath.IsAbs(target) {
				return nil, escapes(base, sub)
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		case unix.S_IFDIR:
		default:
			if len(rest) > 0 {
				next.Close()
				return nil, notAccessible(filepath.Join(base, sub), unix.ENOTDIR)
			}
		}
		stack = append(stack, next)
		cur = next
	}
	if len(stack) == 0 {
		return reopenPath(dir)
	}
	// a descriptor of its own, named by the whole path (the stack's are
	// closed on return)
	fd, err := unix.FcntlInt(stack[len(stack)-1].Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(base, sub)), nil
}

func readlinkat(dir *os.File, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// reopenPath gives a new O_PATH descriptor of what f refers to.
func reopenPath(f *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(f.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func escapes(base, subpath string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("path concatenation escapes the base directory, base: %s, subpath: %s", base, subpath))
}

func notAccessible(path string, cause error) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("cannot access path %s: %v", path, cause))
}
