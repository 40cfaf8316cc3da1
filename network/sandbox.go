package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CreateSandbox makes a new network namespace for a container, with lo up,
// bind-mounted at <exec-root>/netns/<containerID>, and returns that path
// (what the OCI spec's network namespace points at). If the sandbox exists
// already its path is returned. A containerID that is not a plain name is
// ErrInvalidArgument.
func (m *Manager) CreateSandbox(ctx context.Context, containerID string) (string, error) {
	if containerID == "" || strings.ContainsAny(containerID, "/\x00") || containerID == "." || containerID == ".." {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container id %q", containerID))
	}
	path := filepath.Join(m.nsDir, containerID)
	if isNsMount(path) {
		return path, nil
	}
	if err := m.ensureNsDir(); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create netns file: %w", err)
	}
	if f != nil {
		f.Close()
	}
	if err := newNetnsAt(path); err != nil {
		_ = os.Remove(path)
		return "", err
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		_ = m.DeleteSandbox(ctx, containerID)
		return "", err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = m.DeleteSandbox(ctx, containerID)
		return "", err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		_ = m.DeleteSandbox(ctx, containerID)
		return "", fmt.Errorf("bring up lo in sandbox: %w", err)
	}
	return path, nil
}

// newNetnsAt creates a network namespace and bind-mounts it on path. The
// thread that unshares is never returned to the Go scheduler: it exits with
// its goroutine, so no other goroutine ever runs in the new namespace.
func newNetnsAt(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// no UnlockOSThread: the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount netns on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// ensureNsDir makes <exec-root>/netns a shared bind mount of itself (as
// iproute2 does for /run/netns), so that unmounting a namespace file also
// unmounts its copies in mount namespaces created meanwhile (which would
// otherwise keep the network namespace alive).
func (m *Manager) ensureNsDir() error {
	m.nsDirMu.Lock()
	defer m.nsDirMu.Unlock()
	if m.nsDirReady {
		return nil
	}
	if err := os.MkdirAll(m.nsDir, 0o711); err != nil {
		return err
	}
	if !isMountpoint(m.nsDir) {
		if err := unix.Mount(m.nsDir, m.nsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s: %w", m.nsDir, err)
		}
	}
	if err := unix.Mount("none", m.nsDir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", m.nsDir, err)
	}
	m.nsDirReady = true
	return nil
}

// DeleteSandbox releases everything the container holds in the network
// subsystem: its endpoints on every network (veths, addresses, DNS records),
// its published ports, and its network namespace. Deleting what is already
// gone is not an error.
func (m *Manager) DeleteSandbox(ctx context.Context, containerID string) error {
	var errs []error
	m.mu.Lock()
	var nets []string
	for _, eps := range []map[string]*endpointRecord{m.endpoints, m.pending} {
		for _, ep := range eps {
			if ep.ContainerID == containerID {
				nets = append(nets, ep.NetworkID)
			}
		}
	}
	delete(m.restored, containerID)
	m.mu.Unlock()
	for _, n := range nets {
		if err := m.Detach(ctx, containerID, n); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := m.UnpublishPorts(ctx, containerID); err != nil {
		errs = append(errs, err)
	}
	if containerID != "" && !strings.ContainsAny(containerID, "/\x00") {
		path := filepath.Join(m.nsDir, containerID)
		if err := removeNsFile(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeNsFile(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isNsMount reports whether path is a mounted network namespace.
func isNsMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

func isMountpoint(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == dir {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// enableIPv6In turns IPv6 on for ifName in the sandbox at nsPath (a host
// whose default is IPv6 off gives new namespaces that default too).
// /proc/sys/net shows the namespace of the thread that opens it, so this
// runs on a thread moved into the sandbox and thrown away afterwards.
func enableIPv6In(nsPath, ifName string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// no UnlockOSThread: the thread dies with this goroutine
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter sandbox %s: %w", nsPath, err)
			return
		}
		errc <- writeSysctl(filepath.Join("/proc/sys/net/ipv6/conf", ifName, "disable_ipv6"), "0")
	}()
	return <-errc
}
