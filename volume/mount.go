package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/sys/mountinfo"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Ref records that containerID uses the volume, from container create until
// Release: while any ref is held the volume cannot be removed or pruned and
// is not dangling, as in dockerd (a stopped container keeps its volumes).
// Idempotent. Errors: ErrNotFound "get <name>: no such volume".
func (s *Service) Ref(ctx context.Context, name, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.get(name)
	if err != nil {
		return err
	}
	if rf := rec.Refs[containerID]; rf != nil && rf.Held {
		return nil
	}
	rec.addRef(containerID, true)
	return s.table.Put(name, rec)
}

// Release drops containerID's ref (taken by Ref or Mount), unmounting an
// options volume when it was the last active user. The runtime calls it
// when the container is removed. Idempotent; a missing volume is not an error.
func (s *Service) Release(ctx context.Context, name, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.get(name)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if rec.Refs[containerID] == nil {
		return nil
	}
	delete(rec.Refs, containerID)
	s.unmountIfUnused(rec)
	return s.table.Put(name, rec)
}

// Reconcile drops the refs of containers that no longer exist (exists
// reports false), e.g. after a crash between a container's removal and its
// Release. The runtime calls it once at start, after loading its containers.
func (s *Service) Reconcile(ctx context.Context, exists func(containerID string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, _, err := s.table.List()
	if err != nil {
		return err
	}
	for name, rec := range recs {
		changed := false
		for id := range rec.Refs {
			if !exists(id) {
				delete(rec.Refs, id)
				changed = true
			}
		}
		if changed {
			s.unmountIfUnused(rec)
			if err := s.table.Put(name, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// Mount prepares the volume for containerID and returns the host path to
// bind into the container (<root>/<name>/_data). It takes a ref for the
// container if it has none (one that Unmount drops again). A volume created
// with type/device/o options is mounted on _data by its first user and
// unmounted when the last one goes. Mounting twice for the same container
// counts once.
//
// Errors: ErrNotFound "get <name>: no such volume"; the mount(2) failure
// of an options volume (a 500, as in dockerd).
func (s *Service) Mount(ctx context.Context, name, containerID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.get(name)
	if err != nil {
		return "", err
	}
	path := s.dataPath(name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("error while mounting volume '%s': %w", path, err)
	}
	existing := rec.Refs[containerID]
	if needsMount(rec.Options) && !rec.Mounted {
		if err := mountData(rec.Options, path); err != nil {
			return "", fmt.Errorf("error while mounting volume '%s': %w", path, err)
		}
		rec.Mounted = true
	}
	rf := rec.addRef(containerID, false)
	wasActive := existing != nil && existing.Active
	rf.Active = true
	if err := s.table.Put(name, rec); err != nil {
		return "", err
	}
	if !wasActive {
		s.publish("mount", name, map[string]string{"driver": rec.Driver, "container": containerID})
	}
	return path, nil
}

// Unmount ends containerID's use of the volume: it drops the ref Mount took
// (a ref taken by Ref stays until Release) and unmounts an options volume
// when no container uses it any more. Idempotent: unmounting a volume the
// container has not mounted, or a volume that is gone, is not an error.
func (s *Service) Unmount(ctx context.Context, name, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.get(name)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	rf := rec.Refs[containerID]
	if rf == nil || !rf.Active {
		return nil
	}
	rf.Active = false
	if !rf.Held {
		delete(rec.Refs, containerID)
	}
	s.unmountIfUnused(rec)
	if err := s.table.Put(name, rec); err != nil {
		return err
	}
	s.publish("unmount", name, map[string]string{"driver": rec.Driver, "container": containerID})
	return nil
}

// unmountIfUnused unmounts an options volume nobody has active. Like
// dockerd it does not fail the caller: the count is dropped regardless, or
// the volume could never be removed.
func (s *Service) unmountIfUnused(rec *record) {
	if !rec.Mounted || rec.activeCount() > 0 {
		return
	}
	if err := unmountData(s.dataPath(rec.Name)); err != nil {
		logrus.WithError(err).Warnf("volume %s: unmount", rec.Name)
		return
	}
	rec.Mounted = false
}

// validateOpts checks the local driver's options (dockerd's validateOpts).
func validateOpts(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "type", "o", "device", "size":
		default:
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	if v, ok := opts["size"]; ok {
		size, err := units.RAMInBytes(v)
		if err != nil {
			return err
		}
		if size > 0 {
			return errors.New("quota size requested but no quota support")
		}
	}
	for _, need := range []struct {
		opt  string
		reqs []string
	}{{"device", []string{"type"}}, {"type", []string{"device"}}, {"o", []string{"device", "type"}}} {
		if _, ok := opts[need.opt]; !ok {
			continue
		}
		for _, r := range need.reqs {
			if _, ok := opts[r]; !ok {
				return fmt.Errorf("missing required option: %q", r)
			}
		}
	}
	return nil
}

func needsMount(opts map[string]string) bool {
	return opts["device"] != "" || opts["type"] != ""
}

// mountFlags are the o= words that are mount(2) flags; the rest is data.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"suid":          {true, unix.MS_NOSUID},
	"nosuid":        {false, unix.MS_NOSUID},
	"dev":           {true, unix.MS_NODEV},
	"nodev":         {false, unix.MS_NODEV},
	"exec":          {true, unix.MS_NOEXEC},
	"noexec":        {false, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
}

// parseMountOptions splits o= into mount flags and filesystem data.
func parseMountOptions(o string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, w := range strings.Split(o, ",") {
		if w == "" {
			continue
		}
		if f, ok := mountFlags[w]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, w)
	}
	return flags, strings.Join(data, ",")
}

// mountData mounts an options volume (type, device, o) on target.
func mountData(opts map[string]string, target string) error {
	device, fstype := opts["device"], opts["type"]
	if device == "" {
		return errors.New("missing device in volume options")
	}
	flags, data := parseMountOptions(opts["o"])
	var err error
	if flags&unix.MS_BIND != 0 {
		// a bind ignores other flags; read-only and friends need a remount
		err = unix.Mount(device, target, fstype, flags&(unix.MS_BIND|unix.MS_REC), data)
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); err == nil && rest != 0 {
			if err = unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
		}
	} else {
		err = unix.Mount(device, target, fstype, flags, data)
	}
	if err != nil {
		return fmt.Errorf("failed to mount local volume: mount %s:%s, flags: %#x, data: %s: %w", device, target, flags, data, err)
	}
	return nil
}

// unmountData unmounts target; not being mounted is not an error.
func unmountData(target string) error {
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		return unix.Unmount(target, unix.MNT_DETACH)
	default:
		return fmt.Errorf("unmount %s: %w", target, err)
	}
}

func isMounted(path string) bool {
	ok, err := mountinfo.Mounted(path)
	return err == nil && ok
}
