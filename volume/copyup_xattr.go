package volume

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// xattrFile is where copy-up reads or writes extended attributes: an open
// file or directory, or an entry of an open directory that is not
// followed (a symlink, a device node).
type xattrFile interface {
	list(buf []byte) (int, error)
	get(name string, buf []byte) (int, error)
	set(name string, val []byte) error
}

type fdXattrs struct{ f *os.File }

func (x fdXattrs) list(buf []byte) (int, error) { return unix.Flistxattr(int(x.f.Fd()), buf) }
func (x fdXattrs) get(name string, buf []byte) (int, error) {
	return unix.Fgetxattr(int(x.f.Fd()), name, buf)
}
func (x fdXattrs) set(name string, val []byte) error {
	return unix.Fsetxattr(int(x.f.Fd()), name, val, 0)
}

// linkXattrs reaches name in dir through dir's magic link: the directory
// is the one held open, and the l* calls do not follow name itself.
type linkXattrs struct {
	dir  *os.File
	name string
}

func (x linkXattrs) path() string { return fdPath(x.dir) + "/" + x.name }
func (x linkXattrs) list(buf []byte) (int, error) {
	return unix.Llistxattr(x.path(), buf)
}
func (x linkXattrs) get(name string, buf []byte) (int, error) {
	return unix.Lgetxattr(x.path(), name, buf)
}
func (x linkXattrs) set(name string, val []byte) error {
	return unix.Lsetxattr(x.path(), name, val, 0)
}

func copyXattrs(src, dst xattrFile) error {
	size, err := src.list(nil)
	if err != nil || size == 0 {
		return ignoreXattrErr(err)
	}
	buf := make([]byte, size)
	size, err = src.list(buf)
	if err != nil {
		return ignoreXattrErr(err)
	}
	for _, name := range splitNull(buf[:size]) {
		if name == "security.selinux" {
			continue
		}
		vsize, err := src.get(name, nil)
		if err != nil {
			if ignoreXattrErr(err) == nil {
				continue
			}
			return err
		}
		val := make([]byte, vsize)
		if vsize, err = src.get(name, val); err != nil {
			return ignoreXattrErr(err)
		}
		if err := dst.set(name, val[:vsize]); err != nil {
			if ignoreXattrErr(err) == nil {
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// ignoreXattrErr drops what means "this filesystem has no such xattrs":
// the copy goes on without them, as in dockerd.
func ignoreXattrErr(err error) error {
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA) || errors.Is(err, syscall.EPERM) {
		return nil
	}
	return err
}

func splitNull(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
