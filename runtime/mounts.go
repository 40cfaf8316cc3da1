package runtime

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/berthd/berth/internal/safepath"
	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// prepareMounts resolves every mount a new container asks for (Binds,
// Mounts, Tmpfs, VolumesFrom, the image's and config's VOLUMEs) with
// dockerd's precedence, creates the volumes they name and takes a ref on
// each. Anonymous volumes made here are removed again if create fails
// later (releaseVolumes).
func (s *Service) prepareMounts(ctx context.Context, rec *Record, img *Image, defaultReadOnlyNonRecursive bool) (_ []MountPoint, retErr error) {
	hc := rec.HostConfig
	var inherited []mounts.MountSpec
	for _, ref := range hc.VolumesFrom {
		id, mode, err := mounts.ParseVolumesFrom(ref)
		if err != nil {
			return nil, err
		}
		other, err := s.lookup(id)
		if err != nil {
			return nil, err
		}
		other.mu.Lock()
		specs := make([]mounts.MountSpec, 0, len(other.rec.Mounts))
		for _, m := range other.rec.Mounts {
			specs = append(specs, m.Spec)
		}
		other.mu.Unlock()
		inherited = append(inherited, mounts.Inherit(specs, mode)...)
	}
	plan, err := mounts.Plan(mounts.Request{
		Binds: hc.Binds, Mounts: hc.Mounts, Tmpfs: hc.Tmpfs, Volumes: rec.Config.Volumes, VolumesFrom: inherited,
		DaemonRoot: s.d.DataRoot, DefaultReadOnlyNonRecursive: defaultReadOnlyNonRecursive,
	})
	if err != nil {
		return nil, err
	}
	out := make([]MountPoint, 0, len(plan))
	defer func() {
		if retErr != nil {
			s.releaseVolumes(context.WithoutCancel(ctx), &Record{ID: rec.ID, Mounts: out}, true)
		}
	}()
	for _, m := range plan {
		if m.Type != mount.TypeVolume {
			out = append(out, MountPoint{Spec: m})
			continue
		}
		if m.HostPath != "" { // inherited: the volume exists and stays with its owner
			if err := s.d.Volumes.Ref(ctx, m.Source, rec.ID); err != nil {
				return nil, err
			}
			out = append(out, MountPoint{Spec: m})
			continue
		}
		anonymous := m.IsAnonymous()
		v, err := s.d.Volumes.CreateWithRef(ctx, volume.CreateRequest{Name: m.Source, Driver: m.Driver, DriverOpts: m.DriverOpts, Labels: m.Labels}, rec.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, MountPoint{Spec: m.ForVolume(v.Name, v.Mountpoint), Anonymous: anonymous})
	}
	return out, nil
}

// setupMounts mounts volumes, copies image content into new empty volumes,
// and returns the OCI mounts. A source in a tree containers can change (a
// volume subpath, a bind inside a volume) is opened beneath its tree
// (refused when it leads out of it) and handed to the OCI runtime as a
// pin, a mount of exactly what was opened at a path no container can
// change (see mountsource.go); unpin removes the pins once the runtime has
// made its mounts (after the start, failed or not). Call with c.mu held.
func (s *Service) setupMounts(ctx context.Context, c *ctr, rootfs string, u *undo) (_ []specs.Mount, _ func(), retErr error) {
	rec := c.rec
	var (
		out  []specs.Mount
		pins []*safepath.Pin
	)
	unpin := func() {
		for _, p := range pins {
			s.logErr(p.Close(), "remove the pin of a mount source")
		}
		pins = nil
	}
	defer func() {
		if retErr != nil {
			unpin()
		}
	}()
	for _, mp := range rec.Mounts {
		m := mp.Spec
		switch m.Type {
		case mount.TypeVolume:
			path, err := s.d.Volumes.Mount(ctx, m.Source, rec.ID)
			if err != nil {
				return nil, nil, err
			}
			name := m.Source
			u.add(func() { s.logErr(s.d.Volumes.Unmount(ctx, name, rec.ID), "unmount volume "+name) })
			pin, err := s.volumeSource(path, rootfs, m)
			if err != nil {
				return nil, nil, err
			}
			source := path
			if pin != nil {
				pins = append(pins, pin)
				source = pin.Path
			}
			bm, err := bindMount(source, m)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, bm)
		case mount.TypeBind:
			source, pin, err := s.bindSource(m)
			if err != nil {
				return nil, nil, err
			}
			if pin != nil {
				pins = append(pins, pin)
			}
			bm, err := bindMount(source, m)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, bm)
		case mount.TypeTmpfs:
			if m.FromTmpfsMap {
				continue // oci.Generate mounts HostConfig.Tmpfs itself
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: m.OCITmpfsOptions()})
		default:
			return nil, nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("mount type %q is not supported", m.Type))
		}
	}
	return out, unpin, nil
}

// volumeSource opens what of the volume at path the container mounts (its
// subpath, beneath it), copies the image's content at the destination into
// it when it is empty, as dockerd does, and pins a subpath. Both the copy
// and the pin work on the one handle: what the container changes in the
// volume meanwhile cannot redirect them.
func (s *Service) volumeSource(path, rootfs string, m mounts.MountSpec) (*safepath.Pin, error) {
	target, err := safepath.OpenBeneath(path, m.Subpath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if !m.NoCopy {
		err := niced(func() error { return s.d.Volumes.CopyUp(rootfs, m.Destination, target) })
		if err != nil {
			return nil, fmt.Errorf("copy image content into volume %s: %w", m.Source, err)
		}
	}
	if m.Subpath == "" {
		return nil, nil // the volume's own directory: no container can change it
	}
	return safepath.NewPin(target, s.pinsDir())
}

// pinsDir holds the pins of starts in progress (see setupMounts).
func (s *Service) pinsDir() string {
	return filepath.Join(s.d.ExecRoot, "pins")
}

// bindMount is the OCI mount of a bind or volume. A read-only one is
// read-only all the way down ("rro": the mounts below it too) unless it
// asks for ReadOnlyNonRecursive (as binds of API < 1.44 do), as dockerd
// does; where the kernel cannot (before 5.12) it falls back to "ro",
// except for ReadOnlyForceRecursive, which fails.
func bindMount(source string, m mounts.MountSpec) (specs.Mount, error) {
	// dockerd's words; checked at start, as dockerd does
	switch {
	case m.RW && m.ReadOnlyNonRecursive:
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")
	case m.RW && m.ReadOnlyForceRecursive:
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive")
	case m.ReadOnlyNonRecursive && m.ReadOnlyForceRecursive:
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
	}
	opts := []string{"rbind"}
	if m.NonRecursive {
		opts = []string{"bind"}
	}
	prop := string(m.Propagation)
	if prop == "" {
		prop = "rprivate"
	}
	opts = append(opts, prop)
	if !m.RW {
		switch {
		case m.ReadOnlyNonRecursive:
			opts = append(opts, "ro")
		case safepath.RecursiveReadOnlySupported():
			opts = append(opts, "rro")
		case m.ReadOnlyForceRecursive:
			return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("rro is not supported: the kernel has no mount_setattr (kernel is older than 5.12?)")
		default:
			opts = append(opts, "ro")
		}
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: source, Options: opts}, nil
}

func (s *Service) unmountVolumes(ctx context.Context, rec *Record) {
	for _, mp := range rec.Mounts {
		if mp.Spec.Type == mount.TypeVolume {
			s.logErr(s.d.Volumes.Unmount(ctx, mp.Spec.Source, rec.ID), "unmount volume "+mp.Spec.Source)
		}
	}
}

// releaseVolumes drops the container's refs on its volumes and, with
// removeAnonymous (`rm -v`), removes its anonymous volumes.
func (s *Service) releaseVolumes(ctx context.Context, rec *Record, removeAnonymous bool) {
	for _, mp := range rec.Mounts {
		if mp.Spec.Type != mount.TypeVolume {
			continue
		}
		s.logErr(s.d.Volumes.Release(ctx, mp.Spec.Source, rec.ID), "release volume "+mp.Spec.Source)
		if removeAnonymous && mp.Anonymous {
			if err := s.d.Volumes.Remove(ctx, mp.Spec.Source, false); err != nil && !errdefs.IsNotFound(err) {
				logrus.WithError(err).Warnf("remove anonymous volume %s", mp.Spec.Source)
			}
		}
	}
}
