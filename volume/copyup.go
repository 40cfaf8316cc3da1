package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/berthd/berth/internal/safepath"
	"golang.org/x/sys/unix"
)

// createdHook is called after copy-up made name in dir; tests use it to
// play a container that swaps the new entry for a symlink.
var createdHook = func(dir *os.File, name string) {}

// maxLinkFDs bounds the descriptors kept open to re-create hard links;
// past it, further links of a file get copies of their own.
const maxLinkFDs = 1024

// CopyUp is Docker's copy-up: when an empty volume is mounted over a
// directory of the image, the directory's content is copied into the
// volume, and the volume's root takes the directory's owner and mode (so
// an image that chowns its data directory keeps working). Owners, modes
// (setuid, sticky), times, symlinks (not followed), hard links, device
// nodes, fifos and extended attributes (where the filesystem has them;
// security.selinux is skipped) are preserved. Sockets are skipped.
//
// destination is resolved in rootfs as the container will see it
// (symlinks stay inside rootfs); into is the volume directory (or its
// subpath), already opened. It does nothing when into is not an empty
// directory or when destination does not exist or is not a directory.
//
// Other containers may use the volume while it is filled and plant
// symlinks in it: the copy is made through directory handles only, each
// entry created and opened relative to its parent's handle without
// following a symlink, so nothing outside the volume can be touched.
func (s *Service) CopyUp(rootfs, destination string, into *os.File) error {
	root, err := safepath.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	src, err := safepath.OpenInRoot(root, destination)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	return CopyUp(src, into)
}

// CopyUp is Service.CopyUp between two handles (O_PATH ones included).
func CopyUp(src, into *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	var dst unix.Stat_t
	if err := unix.Fstat(int(into.Fd()), &dst); err != nil {
		return err
	}
	if dst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // a file mounted there: nothing to fill
	}
	srcDir, err := openDir(int(src.Fd()), ".")
	if err != nil {
		return err
	}
	defer srcDir.Close()
	dstDir, err := openDir(int(into.Fd()), ".")
	if err != nil {
		return err
	}
	defer dstDir.Close()
	if empty, err := isEmptyDir(dstDir); err != nil || !empty {
		return err
	}
	c := copier{links: map[inode]*os.File{}}
	defer c.close()
	if err := c.copyDir(srcDir, dstDir); err != nil {
		return fmt.Errorf("copy-up of %s into volume: %w", src.Name(), err)
	}
	if err := copyMeta(srcDir, dstDir, &st); err != nil {
		return fmt.Errorf("copy-up of %s into volume: %w", src.Name(), err)
	}
	return nil
}

// openDir opens name in dir as a directory, never through a symlink.
func openDir(dir int, name string) (*os.File, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func isEmptyDir(dir *os.File) (bool, error) {
	// a descriptor of its own: reading moves the directory offset
	d, err := openDir(int(dir.Fd()), ".")
	if err != nil {
		return false, err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

type inode struct{ dev, ino uint64 }

type copier struct {
	links map[inode]*os.File // the first copy of each hard-linked file
}

func (c *copier) close() {
	for _, f := range c.links {
		f.Close()
	}
}

// copyDir copies the entries of src into dst, depth first; a directory's
// metadata is applied once its entries are in (so its times stick).
func (c *copier) copyDir(src, dst *os.File) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(int(src.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if err := c.copyEntry(src, dst, name, &st); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst *os.File, name string, st *unix.Stat_t) error {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		createdHook(dst, name)
		sub, err := openDir(sfd, name)
		if err != nil {
			return err
		}
		defer sub.Close()
		// O_NOFOLLOW: a symlink planted meanwhile fails the copy
		dsub, err := openDir(dfd, name)
		if err != nil {
			return err
		}
		defer dsub.Close()
		if err := c.copyDir(sub, dsub); err != nil {
			return err
		}
		return copyMeta(sub, dsub, st)
	case unix.S_IFREG:
		return c.copyFile(src, dst, name, st)
	case unix.S_IFLNK:
		target, err := readlinkat(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
		createdHook(dst, name)
		return copyLinkMeta(src, dst, name, st)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
		createdHook(dst, name)
		return copyNodeMeta(src, dst, name, st)
	default:
		return nil // sockets belong to a running process, not to the image
	}
}

func (c *copier) copyFile(src, dst *os.File, name string, st *unix.Stat_t) error {
	key := inode{st.Dev, st.Ino}
	if first, ok := c.links[key]; ok {
		// the magic link of a handle of ours: no path is resolved
		return unix.Linkat(unix.AT_FDCWD, fdPath(first), int(dst.Fd()), name, unix.AT_SYMLINK_FOLLOW)
	}
	ifd, err := unix.Openat(int(src.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(ifd), name)
	defer in.Close()
	ofd, err := unix.Openat(int(dst.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(ofd), name)
	defer out.Close()
	createdHook(dst, name)
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	if err := copyMeta(in, out, st); err != nil {
		return err
	}
	if st.Nlink > 1 && len(c.links) < maxLinkFDs {
		if fd, err := unix.Openat(int(dst.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			f := os.NewFile(uintptr(fd), name)
			if sameFile(f, out) {
				c.links[key] = f
			} else {
				f.Close()
			}
		}
	}
	return nil
}

func sameFile(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// copyMeta gives the file or directory open at dst the owner, extended
// attributes, mode and times st has, those of the one open at src.
func copyMeta(src, dst *os.File, st *unix.Stat_t) error {
	if err := unix.Fchown(int(dst.Fd()), int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := copyXattrs(fdXattrs{src}, fdXattrs{dst}); err != nil {
		return err
	}
	// after chown, which clears setuid/setgid
	if err := unix.Fchmod(int(dst.Fd()), st.Mode&0o7777); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(dst), []unix.Timespec{st.Atim, st.Mtim}, 0)
}

// copyLinkMeta is copyMeta for a symlink made as name in dst: nothing
// follows it (were it swapped for another one, that one would be changed,
// inside the volume still).
func copyLinkMeta(src, dst *os.File, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(int(dst.Fd()), name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := copyXattrs(linkXattrs{src, name}, linkXattrs{dst, name}); err != nil {
		return err
	}
	return unix.UtimesNanoAt(int(dst.Fd()), name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyNodeMeta is copyMeta for a device node or fifo made as name in dst,
// which cannot be opened for real (a fifo would block, a device act): the
// mode is set through an O_PATH handle that is checked to be a node of
// that kind, never through a symlink.
func copyNodeMeta(src, dst *os.File, name string, st *unix.Stat_t) error {
	fd, err := unix.Openat(int(dst.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	node := os.NewFile(uintptr(fd), name)
	defer node.Close()
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return err
	}
	if got.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		return fmt.Errorf("%s was replaced while it was copied", name)
	}
	if err := unix.Fchownat(fd, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return err
	}
	if err := copyXattrs(linkXattrs{src, name}, linkXattrs{dst, name}); err != nil {
		return err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, fdPath(node), st.Mode&0o7777, 0); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(node), []unix.Timespec{st.Atim, st.Mtim}, 0)
}

func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
