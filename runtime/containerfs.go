package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
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
	Source      string // host path
	Destination string // path in the container
	ReadOnly    bool
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

func enterView(rootfs string, mounts []viewMount) error {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return os.NewSyscallError("unshare", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].Destination, "/") < strings.Count(mounts[j].Destination, "/")
	})
	for _, m := range mounts {
		if err := bindIntoView(rootfs, m); err != nil {
			return err
		}
	}
	if err := unix.Chroot(rootfs); err != nil {
		return os.NewSyscallError("chroot", err)
	}
	return unix.Chdir("/")
}

// bindIntoView binds one mount over its destination, creating the
// destination the way the OCI runtime does at start. A source that is gone
// is skipped: the rest of the filesystem stays reachable.
func bindIntoView(rootfs string, m viewMount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		logrus.WithError(err).Debugf("container fs view: skip mount %s", m.Destination)
		return nil
	}
	// resolved from the host side before the chroot; the destination can
	// only be a path inside rootfs, and a mount made here is seen by this
	// thread alone
	dest, err := securejoin.SecureJoin(rootfs, m.Destination)
	if err != nil {
		return err
	}
	if err := createMountpoint(dest, st.IsDir()); err != nil {
		return fmt.Errorf("create mount point %s: %w", m.Destination, err)
	}
	if err := unix.Mount(m.Source, dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", m.Destination, err)
	}
	if err := unix.Mount("", dest, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s private: %w", m.Destination, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	return nil
}

func createMountpoint(dest string, dir bool) error {
	if _, err := os.Lstat(dest); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
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
