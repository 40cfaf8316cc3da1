// Package mounts parses the two ways a container asks for mounts — the
// HostConfig.Binds strings ("name:/path:ro", "/host:/path:ro,z", "/path"),
// the structured HostConfig.Mounts, and the HostConfig.Tmpfs map — into one
// MountSpec, with dockerd's validation and error messages. It is pure apart
// from one stat (a Mounts bind source must exist); it creates nothing.
//
// Every error is errdefs.ErrInvalidArgument (HTTP 400), except a mount type
// berth does not implement (ErrNotImplemented).
package mounts

import (
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// DefaultDriver is the only volume driver berth has.
const DefaultDriver = "local"

// MountSpec is one parsed mount: what the runtime needs to create volumes,
// build the OCI mount and report the mount in inspect and ps.
type MountSpec struct {
	// Type is mount.TypeBind, mount.TypeVolume or mount.TypeTmpfs.
	Type mount.Type
	// Source is the host path of a bind (cleaned, absolute) or the name of
	// a volume ("" asks for a new anonymous volume). Empty for tmpfs.
	Source string
	// Destination is the cleaned absolute path inside the container.
	Destination string
	// RW is false for read-only mounts.
	RW bool
	// Mode is the mode string as the user wrote it in Binds ("ro,Z",
	// "nocopy"); Docker reports it as is. Empty for Mounts and Tmpfs.
	Mode string
	// Propagation of a bind (rprivate unless asked); empty for volumes and
	// tmpfs, as Docker reports them.
	Propagation mount.Propagation
	// Label is the SELinux relabel request of a bind ("z", "Z" or "").
	// berth does not relabel; it is kept so Mode round-trips.
	Label string

	// Volumes only.
	Driver     string            // "" means DefaultDriver
	DriverOpts map[string]string // VolumeOptions.DriverConfig.Options, for creating the volume
	Labels     map[string]string // VolumeOptions.Labels, for creating the volume
	NoCopy     bool              // do not copy the image's content into a new empty volume
	Subpath    string            // mount only this relative path of the volume
	// HostPath is the volume's data directory on the host. The parser does
	// not know it: the runtime sets it (ForVolume) after creating or finding
	// the volume, and inspect reports it as Source.
	HostPath string

	// Binds only.
	CreateMountpoint       bool // create a missing bind source (Mounts API); Binds always do
	NonRecursive           bool // bind, not rbind
	ReadOnlyNonRecursive   bool
	ReadOnlyForceRecursive bool

	// Tmpfs only.
	TmpfsSize    int64       // bytes; 0 is the kernel default (half of RAM)
	TmpfsMode    os.FileMode // 0 is the kernel default (1777)
	TmpfsOptions []string    // extra options: exec/noexec from Mounts, or the Tmpfs map's own
	// FromTmpfsMap marks a HostConfig.Tmpfs entry: Docker does not list those
	// in a container's Mounts (inspect shows them under HostConfig.Tmpfs only).
	FromTmpfsMap bool
}

// IsAnonymous reports whether the spec asks for a new anonymous volume.
func (m MountSpec) IsAnonymous() bool { return m.Type == mount.TypeVolume && m.Source == "" }

// ForVolume returns a copy of a volume spec bound to the volume it resolved
// to: name (the generated one for anonymous volumes) and its data directory.
func (m MountSpec) ForVolume(name, hostPath string) MountSpec {
	m.Source, m.HostPath = name, hostPath
	return m
}

// ToMountPoint is the mount as Docker reports it in inspect and ps.
// For a volume, call it on the spec returned by ForVolume.
func (m MountSpec) ToMountPoint() container.MountPoint {
	mp := container.MountPoint{
		Type:        m.Type,
		Destination: m.Destination,
		Mode:        m.Mode,
		RW:          m.RW,
		Propagation: m.Propagation,
	}
	switch m.Type {
	case mount.TypeVolume:
		mp.Name = m.Source
		mp.Source = m.HostPath
		mp.Driver = m.Driver
		if mp.Driver == "" {
			mp.Driver = DefaultDriver
		}
	case mount.TypeBind:
		mp.Source = m.Source
	}
	return mp
}

// TmpfsData is the tmpfs mount data (without flags): "size=1m,mode=1770"
// and the extra options, the way dockerd writes it.
func (m MountSpec) TmpfsData() string {
	var opts []string
	if m.TmpfsMode != 0 {
		// the API carries the raw unix mode bits (1770 is 0o1770), as dockerd
		opts = append(opts, "mode="+strconv.FormatUint(uint64(m.TmpfsMode), 8))
	}
	if m.TmpfsSize != 0 {
		opts = append(opts, "size="+sizeString(m.TmpfsSize))
	}
	return strings.Join(append(opts, m.TmpfsOptions...), ",")
}

// OCITmpfsOptions are the options of the tmpfs OCI mount, as dockerd builds
// them: noexec,nosuid,nodev,rprivate by default, then the user's options (a
// later "exec" replaces the default "noexec"), then ro when read-only.
func (m MountSpec) OCITmpfsOptions() []string {
	user := []string{}
	if m.TmpfsMode != 0 || m.TmpfsSize != 0 || len(m.TmpfsOptions) > 0 {
		user = strings.Split(m.TmpfsData(), ",")
	}
	opts := mergeTmpfsOptions(append([]string{"noexec", "nosuid", "nodev", "rprivate"}, user...))
	if !m.RW {
		opts = append(opts, "ro")
	}
	return opts
}
