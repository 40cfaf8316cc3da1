package mounts

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
)

// restrictedNameChars is what a local volume name may contain (dockerd's
// names.RestrictedNameChars); names become directories under the data root.
const restrictedNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

var restrictedNamePattern = regexp.MustCompile(`^` + restrictedNameChars + `+$`)

// ValidateName checks a local volume name with dockerd's messages (without
// the "create <name>: " prefix the volume service adds).
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.ErrInvalidArgument.WithMessage("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !restrictedNamePattern.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, restrictedNameChars))
	}
	return nil
}

var (
	rwModes = map[string]bool{"rw": true, "ro": true, "ro-non-recursive": true, "ro-force-recursive": true, "rro": true}
	// readOnlyModes are the rw modes that make a mount read-only.
	readOnlyModes    = map[string]bool{"ro": true, "ro-non-recursive": true, "ro-force-recursive": true, "rro": true}
	labelModes       = map[string]bool{"z": true, "Z": true}
	consistencyModes = map[string]bool{"consistent": true, "cached": true, "delegated": true}
	propagationModes = map[mount.Propagation]bool{
		mount.PropagationPrivate: true, mount.PropagationRPrivate: true,
		mount.PropagationSlave: true, mount.PropagationRSlave: true,
		mount.PropagationShared: true, mount.PropagationRShared: true,
	}
)

const defaultPropagation = mount.PropagationRPrivate

// validMode reports whether mode is a comma list with at most one option
// of each kind (rw, label, propagation, copy, consistency).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case rwModes[o]:
			rw++
		case labelModes[o]:
			label++
		case propagationModes[mount.Propagation(o)]:
			prop++
		case o == "nocopy":
			cp++
		case consistencyModes[o]:
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

func invalidSpec(raw string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s'", raw))
}

func invalidMode(mode string) error {
	return errdefs.ErrInvalidArgument.WithMessage("invalid mode: " + mode)
}

// mountConfigError is dockerd's `invalid mount config for type "bind": ...`.
func mountConfigError(t mount.Type, format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: %s", t, fmt.Sprintf(format, args...)))
}

// ParseBind parses one HostConfig.Binds entry: "/path" (an anonymous
// volume), "name:/path[:mode]" (a named volume) or "/host:/path[:mode]" (a
// bind), mode being a comma list of rw|ro, z|Z, a propagation, nocopy and a
// consistency. A relative source is a volume name, so "data/x:/p" fails as
// an invalid volume name, as in dockerd. A missing bind source is not an
// error here: Docker creates it (as a directory) when the container starts.
func ParseBind(raw string) (MountSpec, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return MountSpec{}, invalidSpec(raw)
	}
	var m mount.Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		// "/foo:rw" is a destination with a mode, which volumes cannot have
		if validMode(arr[1]) {
			return MountSpec{}, invalidSpec(raw)
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return MountSpec{}, invalidSpec(raw)
	}
	if !validMode(mode) {
		return MountSpec{}, invalidMode(mode)
	}
	if path.IsAbs(m.Source) {
		m.Type = mount.TypeBind
	} else {
		m.Type = mount.TypeVolume
	}
	var label string
	for _, o := range strings.Split(mode, ",") {
		switch {
		case readOnlyModes[o]:
			m.ReadOnly = true
		case labelModes[o]:
			label = o
		case o == "nocopy":
			m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		case propagationModes[mount.Propagation(o)]:
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(o)}
		}
	}
	if m.Type == mount.TypeBind && (strings.Contains(","+mode+",", ",ro-non-recursive,")) {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		m.BindOptions.ReadOnlyNonRecursive = true
	}
	if m.Type == mount.TypeBind && (strings.Contains(","+mode+",", ",ro-force-recursive,") || strings.Contains(","+mode+",", ",rro,")) {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		m.BindOptions.ReadOnlyForceRecursive = true
	}
	spec, err := fromMount(m, false)
	if err != nil {
		return MountSpec{}, errclass.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid volume specification: '%s'", raw), err)
	}
	if spec.Type == mount.TypeVolume && !spec.IsAnonymous() {
		// dockerd reports this from the volume create it attempts, unwrapped
		if err := ValidateName(spec.Source); err != nil {
			return MountSpec{}, errclass.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("create %s", spec.Source), err)
		}
	}
	if mode != "" {
		spec.Mode = mode
	}
	spec.Label = label
	// Binds create a missing host directory at start (unlike Mounts)
	spec.CreateMountpoint = spec.Type == mount.TypeBind
	return spec, nil
}

// FromMount validates one HostConfig.Mounts entry and converts it. Unlike
// Binds, a bind source that does not exist is an error unless
// BindOptions.CreateMountpoint is set.
func FromMount(m mount.Mount) (MountSpec, error) {
	return fromMount(m, true)
}

// structured is set for the Mounts API: a bind source must exist and a
// volume name is checked here (ParseBind checks it itself, unwrapped).
func fromMount(m mount.Mount, structured bool) (MountSpec, error) {
	if err := validateMount(&m, structured); err != nil {
		return MountSpec{}, err
	}
	spec := MountSpec{
		Type:        m.Type,
		Destination: path.Clean(m.Target),
		RW:          !m.ReadOnly,
	}
	switch m.Type {
	case mount.TypeVolume:
		// dockerd reports a volume mount without a mode as "z"
		spec.Source, spec.Mode = m.Source, "z"
		if o := m.VolumeOptions; o != nil {
			spec.NoCopy, spec.Labels, spec.Subpath = o.NoCopy, o.Labels, o.Subpath
			if o.DriverConfig != nil {
				spec.Driver, spec.DriverOpts = o.DriverConfig.Name, o.DriverConfig.Options
			}
		}
	case mount.TypeBind:
		spec.Source = path.Clean(m.Source)
		spec.Propagation = defaultPropagation
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" {
				spec.Propagation = o.Propagation
			}
			spec.CreateMountpoint, spec.NonRecursive = o.CreateMountpoint, o.NonRecursive
			spec.ReadOnlyNonRecursive, spec.ReadOnlyForceRecursive = o.ReadOnlyNonRecursive, o.ReadOnlyForceRecursive
		}
	case mount.TypeTmpfs:
		if o := m.TmpfsOptions; o != nil {
			spec.TmpfsSize, spec.TmpfsMode = o.SizeBytes, o.Mode
			spec.TmpfsOptions, _ = tmpfsExtraOptions(o.Options)
		}
	}
	return spec, nil
}

func validateAbsolute(p string) error {
	if path.IsAbs(p) {
		return nil
	}
	return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
}

func validateNotRoot(p string) error {
	if path.Clean(p) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	return nil
}

// validateMount is dockerd's validateMountConfig for Linux.
func validateMount(m *mount.Mount, structured bool) error {
	if m.Target == "" {
		return mountConfigError(m.Type, "field Target must not be empty")
	}
	if err := validateNotRoot(m.Target); err != nil {
		return mountConfigError(m.Type, "%v", err)
	}
	if err := validateAbsolute(m.Target); err != nil {
		return mountConfigError(m.Type, "%v", err)
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return mountConfigError(m.Type, "field Source must not be empty")
		}
		if o := m.BindOptions; o != nil && o.Propagation != "" && !propagationModes[o.Propagation] {
			return mountConfigError(m.Type, "invalid propagation mode: %s", o.Propagation)
		}
		if m.VolumeOptions != nil {
			return mountConfigError(m.Type, "field VolumeOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return mountConfigError(m.Type, "field TmpfsOptions must not be specified")
		}
		if err := validateAbsolute(m.Source); err != nil {
			return mountConfigError(m.Type, "%v", err)
		}
		if structured {
			_, err := os.Stat(m.Source)
			switch {
			case errors.Is(err, os.ErrNotExist):
				if m.BindOptions == nil || !m.BindOptions.CreateMountpoint {
					return mountConfigError(m.Type, "bind source path does not exist: %s", m.Source)
				}
			case err != nil:
				return mountConfigError(m.Type, "%v", err)
			}
		}
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return mountConfigError(m.Type, "field BindOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return mountConfigError(m.Type, "field TmpfsOptions must not be specified")
		}
		anonymous := m.Source == ""
		if o := m.VolumeOptions; o != nil && o.Subpath != "" {
			if anonymous {
				return mountConfigError(m.Type, "must not set Subpath when using anonymous volumes")
			}
			if !filepath.IsLocal(o.Subpath) {
				return mountConfigError(m.Type, "subpath must be a relative path within the volume")
			}
		}
		if m.ReadOnly && anonymous {
			return mountConfigError(m.Type, "must not set ReadOnly mode when using anonymous volumes")
		}
		driver := ""
		if o := m.VolumeOptions; o != nil && o.DriverConfig != nil {
			driver = o.DriverConfig.Name
		}
		if structured && !anonymous && (driver == "" || driver == DefaultDriver) {
			if err := ValidateName(m.Source); err != nil {
				// dockerd reports this from the volume create it attempts
				return errclass.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("create %s", m.Source), err)
			}
		}
	case mount.TypeTmpfs:
		if m.BindOptions != nil {
			return mountConfigError(m.Type, "field BindOptions must not be specified")
		}
		if m.VolumeOptions != nil {
			return mountConfigError(m.Type, "field VolumeOptions must not be specified")
		}
		if m.Source != "" {
			return mountConfigError(m.Type, "field Source must not be specified")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return mountConfigError(m.Type, "invalid tmpfs size: %d", o.SizeBytes)
			}
			if o.Mode&^0o7777 != 0 {
				return mountConfigError(m.Type, "invalid tmpfs mode: %o", uint32(o.Mode))
			}
			if _, err := tmpfsExtraOptions(o.Options); err != nil {
				return mountConfigError(m.Type, "%v", err)
			}
		}
	case mount.TypeImage:
		// a client error, as an unknown mount type is: the request cannot
		// be served as given (a 400, not a 501 a client might retry on)
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: image mounts are not supported by berth; use a volume or a bind mount", m.Type))
	default:
		return mountConfigError(m.Type, "mount type unknown")
	}
	return nil
}

// tmpfsExtraOptions checks TmpfsOptions.Options: pairs of [option] or
// [option, value], only exec and noexec allowed (as dockerd).
func tmpfsExtraOptions(raw [][]string) ([]string, error) {
	var out []string
	for _, o := range raw {
		if len(o) < 1 || len(o) > 2 {
			return nil, errors.New("invalid option array length")
		}
		if o[0] != "exec" && o[0] != "noexec" {
			return nil, errors.New("invalid option: " + o[0])
		}
		if len(o) == 1 {
			out = append(out, o[0])
		} else {
			out = append(out, o[0]+"="+o[1])
		}
	}
	return out, nil
}

// ParseVolumesFrom parses one HostConfig.VolumesFrom entry,
// "container[:ro|rw]", into the container and the mode ("rw" by default).
// Propagation and copy modes are refused, as in dockerd.
func ParseVolumesFrom(spec string) (containerID, mode string, err error) {
	if spec == "" {
		return "", "", errdefs.ErrInvalidArgument.WithMessage("volumes-from specification cannot be an empty string")
	}
	id, mode, _ := strings.Cut(spec, ":")
	if mode == "" {
		return id, "rw", nil
	}
	if !validMode(mode) {
		return "", "", invalidMode(mode)
	}
	for _, o := range strings.Split(mode, ",") {
		if propagationModes[mount.Propagation(o)] || o == "nocopy" {
			return "", "", invalidMode(mode)
		}
	}
	return id, mode, nil
}

// ReadOnlyMode reports whether a Binds or VolumesFrom mode asks for read-only.
func ReadOnlyMode(mode string) bool {
	for _, o := range strings.Split(mode, ",") {
		if readOnlyModes[o] {
			return true
		}
	}
	return false
}

// sizeString writes bytes with the largest suffix that divides it evenly,
// as dockerd does for tmpfs size=.
func sizeString(n int64) string {
	for _, u := range []struct {
		suffix string
		div    int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n%u.div == 0 {
			return strconv.FormatInt(n/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
