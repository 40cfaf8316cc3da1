package safepath

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// BindOptions say how Bind attaches a copy of a tree.
type BindOptions struct {
	// Recursive brings the mounts below the source along (rbind).
	Recursive bool
	// ReadOnly makes the new mount read-only; with RecursiveReadOnly the
	// mounts below it too (mount_setattr, Linux 5.12; refused without).
	ReadOnly, RecursiveReadOnly bool
	// Private cuts the new mounts from every peer group, so nothing done
	// to them propagates anywhere (and nothing propagates into them).
	Private bool
}

// newMountAPI reports whether the kernel has open_tree/move_mount (5.2)
// and mount_setattr (5.12). A variable so tests can take the fallback.
var newMountAPI = sync.OnceValue(func() bool {
	// probes that fail on their arguments when the syscall exists
	_, err := unix.OpenTree(-1, "", 0)
	if errors.Is(err, unix.ENOSYS) {
		return false
	}
	err = unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
})

// RecursiveReadOnlySupported tells whether a mount tree can be made
// read-only as a whole (mount_setattr with AT_RECURSIVE, Linux 5.12), which
// the OCI runtime's "rro" option needs too.
func RecursiveReadOnlySupported() bool { return newMountAPI() }

// Bind mounts a copy of the tree at src (any handle, O_PATH included) over
// dst, which is resolved inside root once and made first when it is
// missing (Mountpoint: a directory or a file, as src is). Neither is
// resolved by path again: with the new mount API the copy is made from
// the source handle (open_tree) and attached to the destination handle
// (move_mount); on older kernels the mount goes through /proc/self/fd and
// the result is checked to be the source.
func Bind(src, root *os.File, dst string, o BindOptions) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	target, err := Mountpoint(root, dst, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dst, err)
	}
	defer target.Close()
	if newMountAPI() {
		return bindTree(src, target, o)
	}
	return bindProc(src, root, dst, target, o)
}

func bindTree(src, target *os.File, o BindOptions) error {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if o.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", flags)
	if err != nil {
		return os.NewSyscallError("open_tree", err)
	}
	tree := os.NewFile(uintptr(fd), "tree")
	defer tree.Close()
	if o.Private {
		if err := setattr(tree, unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_PRIVATE}); err != nil {
			return err
		}
	}
	if o.ReadOnly {
		var rec uint
		if o.RecursiveReadOnly {
			rec = unix.AT_RECURSIVE
		}
		if err := setattr(tree, rec, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return err
		}
	}
	err = unix.MoveMount(int(tree.Fd()), "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return os.NewSyscallError("move_mount", err)
	}
	return nil
}

func setattr(tree *os.File, flags uint, attr *unix.MountAttr) error {
	err := unix.MountSetattr(int(tree.Fd()), "", unix.AT_EMPTY_PATH|flags, attr)
	if err != nil {
		return os.NewSyscallError("mount_setattr", err)
	}
	return nil
}

// bindProc is Bind for kernels before 5.12: mount(2) through the magic
// links of both handles. Changing flags and propagation needs the new
// mount's own root, which only a lookup reaches; it is opened in the root
// again and must be the source (same device and inode), else the change
// is refused.
func bindProc(src, root *os.File, dst string, target *os.File, o BindOptions) error {
	if o.ReadOnly && o.RecursiveReadOnly {
		return errors.New("recursive read-only mounts need Linux 5.12 or newer")
	}
	flags := uintptr(unix.MS_BIND)
	if o.Recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(fdPath(src), fdPath(target), "", flags, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if !o.ReadOnly && !o.Private {
		return nil
	}
	mnt, err := OpenInRoot(root, dst)
	if err != nil {
		return err
	}
	defer mnt.Close()
	if !sameInode(src, mnt) {
		return fmt.Errorf("bind mount at %s: the mount point changed during the mount", dst)
	}
	if o.Private {
		if err := unix.Mount("", fdPath(mnt), "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make mount private: %w", err)
		}
	}
	if o.ReadOnly {
		if err := unix.Mount("", fdPath(mnt), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount read-only: %w", err)
		}
	}
	return nil
}

func sameInode(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}
