package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// CopyUp is Docker's copy-up: when an empty volume is mounted over a
// directory of the image, the directory's content is copied into the
// volume, and the volume's root takes the directory's owner and mode (so
// an image that chowns its data directory keeps working). Owners, modes
// (setuid, sticky), times, symlinks (not followed), hard links, device
// nodes, fifos and extended attributes (where the filesystem has them;
// security.selinux is skipped) are preserved. Sockets are skipped.
//
// It does nothing when volumePath is not empty (the volume already has
// data) or when srcDir does not exist or is not a directory. srcDir must
// already be resolved inside the container's root filesystem (see
// CopyUpFrom); nothing under it is followed.
func (s *Service) CopyUp(srcDir, volumePath string) error {
	return CopyUp(srcDir, volumePath)
}

// CopyUpFrom resolves destination inside rootfs the way the container will
// see it (symlinks are resolved within rootfs, never out of it) and copies
// it up into volumePath.
func (s *Service) CopyUpFrom(rootfs, destination, volumePath string) error {
	src, err := securejoin.SecureJoin(rootfs, destination)
	if err != nil {
		return err
	}
	return CopyUp(src, volumePath)
}

// CopyUp is Service.CopyUp without a service.
func CopyUp(srcDir, volumePath string) error {
	fi, err := os.Lstat(srcDir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	if err != nil {
		return err
	}
	empty, err := isEmptyDir(volumePath)
	if err != nil || !empty {
		return err
	}
	c := copier{inodes: map[inode]string{}}
	err = filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(volumePath, rel)
		if rel == "." {
			return nil // the root's metadata is applied last
		}
		return c.copyEntry(p, dst)
	})
	if err != nil {
		return fmt.Errorf("copy-up of %s into volume: %w", srcDir, err)
	}
	// directories last, deepest first, so their times stick
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if err := copyMeta(c.dirs[i][0], c.dirs[i][1]); err != nil {
			return fmt.Errorf("copy-up of %s into volume: %w", srcDir, err)
		}
	}
	if err := copyMeta(srcDir, volumePath); err != nil {
		return fmt.Errorf("copy-up of %s into volume: %w", srcDir, err)
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

type inode struct{ dev, ino uint64 }

type copier struct {
	inodes map[inode]string // first copy of each hard-linked file
	dirs   [][2]string      // src, dst of every directory, in walk order
}

func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		c.dirs = append(c.dirs, [2]string{src, dst})
		return nil
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFREG:
		key := inode{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if first, ok := c.inodes[key]; ok {
				return os.Link(first, dst)
			}
			c.inodes[key] = dst
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil // sockets belong to a running process, not to the image
	}
	return copyMeta(src, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta gives dst the owner, mode, extended attributes and times of
// src, without following a symlink at either.
func copyMeta(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	// after chown, which clears setuid/setgid
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return ignoreXattrErr(err)
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return ignoreXattrErr(err)
	}
	for _, name := range splitNull(buf[:size]) {
		if name == "security.selinux" {
			continue
		}
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			if ignoreXattrErr(err) == nil {
				continue
			}
			return err
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(src, name, val); err != nil {
			return ignoreXattrErr(err)
		}
		if err := unix.Lsetxattr(dst, name, val[:vsize], 0); err != nil {
			if ignoreXattrErr(err) == nil {
				continue
			}
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
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
