package runtime

import (
	"context"
	"fmt"
	"os"

	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
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
func (s *Service) prepareMounts(ctx context.Context, rec *Record, img *Image) (_ []MountPoint, retErr error) {
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
	plan, err := mounts.Plan(mounts.Request{Binds: hc.Binds, Mounts: hc.Mounts, Tmpfs: hc.Tmpfs, Volumes: rec.Config.Volumes, VolumesFrom: inherited, DaemonRoot: s.d.DataRoot})
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
// and returns the OCI mounts. Call with c.mu held.
func (s *Service) setupMounts(ctx context.Context, c *ctr, rootfs string, u *undo) ([]specs.Mount, error) {
	rec := c.rec
	var out []specs.Mount
	for _, mp := range rec.Mounts {
		m := mp.Spec
		switch m.Type {
		case mount.TypeVolume:
			path, err := s.d.Volumes.Mount(ctx, m.Source, rec.ID)
			if err != nil {
				return nil, err
			}
			name := m.Source
			u.add(func() { s.logErr(s.d.Volumes.Unmount(ctx, name, rec.ID), "unmount volume "+name) })
			if !m.NoCopy {
				if src, err := securePath(rootfs, m.Destination); err == nil {
					if err := s.d.Volumes.CopyUp(src, path); err != nil {
						return nil, fmt.Errorf("copy image content into volume %s: %w", name, err)
					}
				}
			}
			if m.Subpath != "" {
				// a symlink in the volume must not lead out of it
				sub, err := securejoin.SecureJoin(path, m.Subpath)
				if err != nil {
					return nil, err
				}
				path = sub
			}
			out = append(out, bindMount(path, m))
		case mount.TypeBind:
			if _, err := os.Stat(m.Source); os.IsNotExist(err) {
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			}
			out = append(out, bindMount(m.Source, m))
		case mount.TypeTmpfs:
			if m.FromTmpfsMap {
				continue // oci.Generate mounts HostConfig.Tmpfs itself
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: m.OCITmpfsOptions()})
		default:
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("mount type %q is not supported", m.Type))
		}
	}
	return out, nil
}

func bindMount(source string, m mounts.MountSpec) specs.Mount {
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
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: source, Options: opts}
}

// securePath joins a container path to the rootfs, resolving symlinks as
// if rootfs were "/", so an image's symlink never leads to host files.
func securePath(rootfs, p string) (string, error) {
	resolved, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(resolved); err != nil {
		return "", err
	}
	return resolved, nil
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
