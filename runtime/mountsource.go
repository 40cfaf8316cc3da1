package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berth/internal/safepath"
	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
)

// Mount sources in trees that containers can write (a volume's data, a
// layer or root filesystem in the image store) can be swapped for a
// symlink by a container at any time. Such a source, a volume subpath or
// a bind of a path inside a volume, is opened beneath its tree, once, and
// given to the OCI runtime as a pin (safepath.Pin); the docker cp view
// opens it beneath its tree again. Everything else (a bind of a host
// path, a volume's own directory, the /etc files) is a path only the
// host's administrator can change, used as it is, as dockerd does.

// sourceBeneath says where a mount's source is opened from: root and a
// relative rel when the source lies in a tree containers can change (rel
// is then resolved beneath root), else the source itself and "".
// volumePath is the data directory of a volume mount.
func (s *Service) sourceBeneath(m mounts.MountSpec, volumePath string) (root, rel string) {
	if m.Type == mount.TypeVolume {
		return volumePath, m.Subpath
	}
	if root, rel, ok := s.writableTree(m.Source); ok {
		return root, rel
	}
	return m.Source, ""
}

// writableTree finds the container-writable tree a host path lies in:
// <data-root>/volumes/<name>/_data or <data-root>/storage/overlay/<id>/
// {diff,merged}. ok is false for a path outside them, or for such a
// tree's own directory.
func (s *Service) writableTree(p string) (root, rel string, ok bool) {
	p = filepath.Clean(p)
	trees := []struct {
		base  string
		depth int    // elements from base to the tree's root
		leaf  string // the last of them ("" for any)
	}{
		{filepath.Join(s.d.DataRoot, "volumes"), 2, "_data"},
		{filepath.Join(s.d.DataRoot, "storage", "overlay"), 2, ""},
	}
	for _, t := range trees {
		rest, found := strings.CutPrefix(p, t.base+"/")
		if !found {
			continue
		}
		parts := strings.Split(rest, "/")
		if len(parts) <= t.depth || (t.leaf != "" && parts[t.depth-1] != t.leaf) {
			return "", "", false
		}
		return filepath.Join(append([]string{t.base}, parts[:t.depth]...)...), filepath.Join(parts[t.depth:]...), true
	}
	return "", "", false
}

// bindSource is what the OCI runtime gets for a bind: a pin of the source
// opened beneath its tree when it lies in one containers can change, else
// the host path, made first when it is missing (as Binds do).
func (s *Service) bindSource(m mounts.MountSpec) (string, *safepath.Pin, error) {
	root, rel := s.sourceBeneath(m, "")
	if rel == "" {
		if _, err := os.Stat(m.Source); os.IsNotExist(err) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return "", nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
			}
		}
		return m.Source, nil, nil
	}
	f, err := safepath.OpenBeneath(root, rel)
	if errdefs.IsNotFound(err) && m.CreateMountpoint {
		// made inside the tree, then opened beneath it like any other
		if err := mkdirInTree(root, rel); err != nil {
			return "", nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
		}
		f, err = safepath.OpenBeneath(root, rel)
	}
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	pin, err := safepath.NewPin(f, s.pinsDir())
	if err != nil {
		return "", nil, err
	}
	return pin.Path, pin, nil
}

func mkdirInTree(root, rel string) error {
	r, err := safepath.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := safepath.Mountpoint(r, rel, true)
	if err != nil {
		return err
	}
	return errors.Join(d.Close())
}
