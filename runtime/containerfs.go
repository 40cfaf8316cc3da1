package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/berthd/berth/internal/safepath"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// The archive endpoints (docker cp) work on a container's filesystem as the
// container sees it: its root filesystem with its volumes, binds and
// /etc files mounted over it. Resolving paths on the host against the
// rootfs directory would race with the container (CVE-2018-15664) and miss
// the mounts, so, like dockerd, berth runs those operations on a thread of
// its own that has a private mount namespace, binds the mounts into it and
// chroots into the rootfs: the kernel then resolves every path and every
// symlink inside the container's root, and nothing a tar entry or a symlink
// says can reach the host.

// init keeps the main goroutine on the startup thread. A view thread
// unshares its mount namespace and root; were it the startup thread, whose
// state /proc/self shows, the whole daemon would read the view's mount
// table from then on (moby's internal/unshare does the same for this reason).
func init() { goruntime.LockOSThread() }

// viewMount is one mount of the container reproduced in a view.
type viewMount struct {
	// Source is the host path; with Subpath, a volume's data directory.
	Source string
	// Subpath is a volume subpath, which the container can change: it is
	// opened beneath Source, and refused when it leads out of it.
	Subpath     string
	Destination string // path in the container
	ReadOnly    bool
	// ReadOnlyNonRecursive leaves the mounts below a read-only one
	// writable (dockerd's BindOptions.ReadOnlyNonRecursive, API < 1.44).
	ReadOnlyNonRecursive bool
}

// fsView is a thread whose root directory is a container's filesystem.
// Functions given to run and goRun execute on that thread, one at a time;
// goroutines they start see the host's filesystem.
type fsView struct {
	todo chan func()
	done chan struct{}
}

// openFSView starts the view thread: private mount namespace (slave of the
// host's, so nothing done in it propagates back), the mounts bound over
// rootfs, then chroot. The thread ends, and its namespace with every bind
// in it, when the view is closed.
func openFSView(rootfs string, mounts []viewMount) (*fsView, error) {
	v := &fsView{todo: make(chan func()), done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the Go runtime ends a locked thread whose
		// goroutine returns, so the altered thread is never reused.
		goruntime.LockOSThread()
		defer close(v.done)
		if err := enterView(rootfs, mounts); err != nil {
			started <- err
			return
		}
		started <- nil
		for fn := range v.todo {
			fn()
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return v, nil
}

// enterView sets the view up. Every path the container can change (the
// mount destinations under rootfs, volume subpaths) is resolved once into
// a handle and mounted through it, never by path again: a container that
// swaps a directory for a symlink meanwhile cannot redirect a mount.
func enterView(rootfs string, mounts []viewMount) error {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return os.NewSyscallError("unshare", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	// opened in the new namespace, where the binds are made
	root, err := safepath.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].Destination, "/") < strings.Count(mounts[j].Destination, "/")
	})
	for _, m := range mounts {
		if err := bindIntoView(root, m); err != nil {
			return err
		}
	}
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return os.NewSyscallError("fchdir", err)
	}
	if err := unix.Chroot("."); err != nil {
		return os.NewSyscallError("chroot", err)
	}
	return unix.Chdir("/")
}

// bindIntoView binds one mount over its destination, creating the
// destination the way the OCI runtime does at start. A bind source that
// is gone is skipped (the rest of the filesystem stays reachable); a
// volume subpath that is missing or leads out of its volume fails the
// view, in dockerd's words.
func bindIntoView(root *os.File, m viewMount) error {
	src, err := openViewSource(m)
	if err != nil {
		if m.Subpath == "" {
			logrus.WithError(err).Debugf("container fs view: skip mount %s", m.Destination)
			return nil
		}
		return err
	}
	defer src.Close()
	opts := safepath.BindOptions{
		Recursive: true,
		ReadOnly:  m.ReadOnly,
		// as dockerd's view: read-only all the way down where the kernel can
		RecursiveReadOnly: m.ReadOnly && !m.ReadOnlyNonRecursive && safepath.RecursiveReadOnlySupported(),
		// a mount made here is seen by this thread alone
		Private: true,
	}
	if err := safepath.Bind(src, root, m.Destination, opts); err != nil {
		return fmt.Errorf("bind %s: %w", m.Destination, err)
	}
	return nil
}

// openViewSource opens a mount's source: a bind's host path as the OCI
// runtime does (host symlinks followed), a volume subpath beneath its
// volume.
func openViewSource(m viewMount) (*os.File, error) {
	if m.Subpath != "" {
		return safepath.OpenBeneath(m.Source, m.Subpath)
	}
	return os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
}

// run calls fn in the view and returns its error.
func (v *fsView) run(fn func() error) error {
	res := make(chan error, 1)
	v.todo <- func() { res <- fn() }
	return <-res
}

// goRun starts fn in the view without waiting for it; close waits.
func (v *fsView) goRun(fn func()) {
	v.todo <- fn
}

// close waits for what runs in the view and ends the thread.
func (v *fsView) close() {
	close(v.todo)
	<-v.done
}
