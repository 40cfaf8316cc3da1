package mounts

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
)

// Request is everything a container create says about mounts.
type Request struct {
	Binds  []string          // HostConfig.Binds
	Mounts []mount.Mount     // HostConfig.Mounts
	Tmpfs  map[string]string // HostConfig.Tmpfs
	// Volumes is Config.Volumes: the image's VOLUMEs merged with the
	// request's (the CLI puts `-v /path` there).
	Volumes map[string]struct{}
	// VolumesFrom are the mounts inherited from HostConfig.VolumesFrom
	// containers (see Inherit), in the order of VolumesFrom.
	VolumesFrom []MountSpec
	// DaemonRoot is the daemon's data root: binds of it, in it or above it
	// are rslave unless they ask for rslave or rshared (see daemonRootBind).
	DaemonRoot string
	// DefaultReadOnlyNonRecursive makes read-only binds of Binds and Mounts
	// read-only at the top only (API < 1.44, as dockerd).
	DefaultReadOnlyNonRecursive bool
}

// Plan resolves a create request into the container's mounts, sorted by
// destination, with dockerd's precedence: Binds and Mounts replace what
// VolumesFrom brought to the same destination; two of Binds, Mounts and
// Tmpfs at one destination are "Duplicate mount point: <dest>" (400); a
// Config.Volumes entry becomes an anonymous volume (Mode "") only where
// nothing else is mounted. Nothing is created: volumes with an empty Source
// are anonymous ones the runtime creates.
func Plan(r Request) ([]MountSpec, error) {
	byDest := map[string]MountSpec{}
	for _, m := range r.VolumesFrom {
		byDest[m.Destination] = m
	}
	explicit := map[string]bool{}
	add := func(m MountSpec) error {
		if explicit[m.Destination] {
			return errdefs.ErrInvalidArgument.WithMessage("Duplicate mount point: " + m.Destination)
		}
		if r.DefaultReadOnlyNonRecursive && m.Type == mount.TypeBind && !m.RW {
			m.ReadOnlyNonRecursive = true
		}
		explicit[m.Destination] = true
		byDest[m.Destination] = m
		return nil
	}
	for _, b := range r.Binds {
		m, err := ParseBind(b)
		if err != nil {
			return nil, err
		}
		if err := daemonRootBind(&m, bindModePropagation(b), r.DaemonRoot); err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, mm := range r.Mounts {
		m, err := FromMount(mm)
		if err != nil {
			return nil, err
		}
		var asked mount.Propagation
		if mm.BindOptions != nil {
			asked = mm.BindOptions.Propagation
		}
		if err := daemonRootBind(&m, asked, r.DaemonRoot); err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, dest := range sortedKeys(r.Tmpfs) {
		m, err := ParseTmpfs(dest, r.Tmpfs[dest])
		if err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for dest := range r.Volumes {
		if err := validateNotRoot(dest); err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		if err := validateAbsolute(dest); err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		dest = path.Clean(dest)
		if _, ok := byDest[dest]; ok {
			continue
		}
		byDest[dest] = MountSpec{Type: mount.TypeVolume, Destination: dest, RW: true}
	}
	out := make([]MountSpec, 0, len(byDest))
	for _, m := range byDest {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, nil
}

// Inherit is what a container gets from one VolumesFrom entry: the other
// container's mounts (not its Tmpfs map entries, which Docker does not
// share), read-only when mode says so or when they were, never copied up,
// and reported without a mode, as dockerd does.
func Inherit(from []MountSpec, mode string) []MountSpec {
	var out []MountSpec
	for _, m := range from {
		if m.FromTmpfsMap {
			continue
		}
		m.RW = m.RW && !ReadOnlyMode(mode)
		m.Mode, m.NoCopy = "", true
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// String is a short form for logs: "volume data:/var/lib/data (rw)".
func (m MountSpec) String() string {
	rw := "rw"
	if !m.RW {
		rw = "ro"
	}
	return fmt.Sprintf("%s %s:%s (%s)", m.Type, m.Source, m.Destination, rw)
}

// daemonRootBind is dockerd's validateBindDaemonRoot: a bind whose source
// is in the daemon's data root, or contains it, must not give the container
// private references to the mounts there (root filesystems, /dev/shm of
// shareable containers), which would keep the daemon from unmounting them.
// Without a propagation such a bind is rslave; rslave and rshared stay;
// any other is invalid. Paths compare as strings, as in dockerd.
func daemonRootBind(m *MountSpec, asked mount.Propagation, root string) error {
	if root != "" {
		root = path.Clean(root)
	}
	if root == "" || m.Type != mount.TypeBind || !(strings.HasPrefix(m.Source, root) || strings.HasPrefix(root, m.Source)) {
		return nil
	}
	switch asked {
	case "":
		m.Propagation = mount.PropagationRSlave
		return nil
	case mount.PropagationRSlave, mount.PropagationRShared:
		return nil
	}
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(`invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root, daemon root: %q, bind mount source: %q, propagation: %q`, root, m.Source, asked))
}

// bindModePropagation is the propagation a Binds entry names in its mode
// ("/a:/b:ro,rshared"), "" when it names none.
func bindModePropagation(raw string) mount.Propagation {
	arr := strings.SplitN(raw, ":", 4)
	if len(arr) != 3 {
		return ""
	}
	for _, o := range strings.Split(arr[2], ",") {
		if propagationModes[mount.Propagation(o)] {
			return mount.Propagation(o)
		}
	}
	return ""
}
