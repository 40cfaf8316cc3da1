package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// fsLease is a container's root filesystem held for an archive operation,
// with the mounts a view of it needs.
type fsLease struct {
	rec      *Record
	rootfs   string
	mounts   []viewMount
	readonly bool // the container's rootfs is read-only (--read-only)
	release  func()
}

// leaseFS gives access to the container's root filesystem: the mounted one
// of a running container, or, for a stopped one, the rootfs and volumes
// mounted until release (shared by concurrent operations).
func (s *Service) leaseFS(ctx context.Context, c *ctr) (*fsLease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	switch rec.State.Status {
	case container.StateRemoving:
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is being removed", rec.ID))
	case container.StateDead:
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is dead", rec.ID))
	}
	l := &fsLease{rec: rec, readonly: rec.HostConfig.ReadonlyRootfs, release: func() {}}
	if c.task != nil && c.rootfs != "" {
		mounts, err := s.runningMounts(rec)
		if err != nil {
			return nil, err
		}
		l.rootfs, l.mounts = c.rootfs, mounts
		return l, nil
	}
	// MountRootfs is counted and returns the same path to every caller;
	// the last user's release unmounts.
	rootfs, err := s.d.Images.MountRootfs(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	c.fsUsers++
	l.rootfs, l.release = rootfs, func() { s.releaseFS(c) }
	mounts, err := s.stoppedMounts(ctx, rec)
	if err != nil {
		s.releaseFSLocked(c)
		return nil, err
	}
	l.mounts = mounts
	return l, nil
}

// releaseFS ends one use of a stopped container's filesystem. When the
// container was started meanwhile, its run owns the mounts now.
func (s *Service) releaseFS(c *ctr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.releaseFSLocked(c)
}

func (s *Service) releaseFSLocked(c *ctr) {
	c.fsUsers--
	if c.fsUsers > 0 || c.task != nil {
		return
	}
	ctx := context.Background()
	s.unmountVolumes(ctx, c.rec)
	s.logErr(s.d.Images.UnmountRootfs(ctx, c.rec.ID), "unmount rootfs")
}

// runningMounts are the bind mounts of a running container as its OCI
// spec has them: volumes, binds and the /etc files. Kernel file systems
// and tmpfs are not reproduced (dockerd does not show them either).
func (s *Service) runningMounts(rec *Record) ([]viewMount, error) {
	b, err := os.ReadFile(filepath.Join(s.stateDir(rec.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	// a source in a tree containers can change was given to the OCI
	// runtime through a pin, gone since the start: open it again, beneath
	// its tree
	beneath := map[string]viewMount{}
	for _, mp := range rec.Mounts {
		root, rel := s.sourceBeneath(mp.Spec, mp.Spec.HostPath)
		if rel != "" {
			beneath[mp.Spec.Destination] = viewMount{Source: root, Subpath: rel}
		}
	}
	var out []viewMount
	for _, m := range spec.Mounts {
		isBind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if !isBind || !filepath.IsAbs(m.Source) || underKernelFS(m.Destination) {
			continue
		}
		ro, rro := slices.Contains(m.Options, "ro"), slices.Contains(m.Options, "rro")
		vm := viewMount{Source: m.Source, Destination: m.Destination, ReadOnly: ro || rro, ReadOnlyNonRecursive: ro && !rro}
		if b, ok := beneath[m.Destination]; ok {
			vm.Source, vm.Subpath = b.Source, b.Subpath
		} else if strings.HasPrefix(m.Source, s.pinsDir()+"/") {
			continue
		}
		out = append(out, vm)
	}
	return out, nil
}

// stoppedMounts mounts the volumes of a stopped container (released by
// releaseFS) and lists them with its binds and the /etc files of its last
// run; call with c.mu held.
func (s *Service) stoppedMounts(ctx context.Context, rec *Record) ([]viewMount, error) {
	var out []viewMount
	for _, mp := range rec.Mounts {
		m := mp.Spec
		switch m.Type {
		case mount.TypeVolume:
			path, err := s.d.Volumes.Mount(ctx, m.Source, rec.ID)
			if err != nil {
				return nil, err
			}
			// a subpath is opened by the view, beneath the volume
			out = append(out, viewMount{Source: path, Subpath: m.Subpath, Destination: m.Destination, ReadOnly: !m.RW})
		case mount.TypeBind:
			root, rel := s.sourceBeneath(m, "")
			out = append(out, viewMount{Source: root, Subpath: rel, Destination: m.Destination, ReadOnly: !m.RW, ReadOnlyNonRecursive: m.ReadOnlyNonRecursive})
		}
	}
	for _, f := range []struct{ name, dest string }{{"hostname", "/etc/hostname"}, {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"}} {
		p := filepath.Join(s.containerDir(rec.ID), f.name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, viewMount{Source: p, Destination: f.dest, ReadOnly: rec.HostConfig.ReadonlyRootfs})
		}
	}
	return out, nil
}

func underKernelFS(dest string) bool {
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if dest == p || strings.HasPrefix(dest, p+"/") {
			return true
		}
	}
	return false
}

// writableAt tells why path (resolved, in the container) cannot be written
// by docker cp: a read-only mount or a read-only rootfs, as dockerd says.
func (l *fsLease) writableAt(path string) error {
	var best *viewMount
	for i, m := range l.mounts {
		if path == m.Destination || strings.HasPrefix(path, strings.TrimSuffix(m.Destination, "/")+"/") {
			if best == nil || len(m.Destination) > len(best.Destination) {
				best = &l.mounts[i]
			}
		}
	}
	if best != nil {
		if best.ReadOnly {
			return errdefs.ErrInvalidArgument.WithMessage("mounted volume is marked read-only")
		}
		return nil
	}
	if l.readonly {
		return errdefs.ErrInvalidArgument.WithMessage("container rootfs is marked read-only")
	}
	return nil
}
