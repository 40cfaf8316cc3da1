package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DeviceLookup finds device nodes on the host.
type DeviceLookup interface {
	// Device returns the device node at path, or, when path is a directory,
	// every device node below it (as Docker does for --device /dev/snd).
	// Result paths start with path as given, even when it is a symlink.
	Device(path string) ([]specs.LinuxDevice, error)
	// All returns every device node under /dev that a privileged container gets.
	All() ([]specs.LinuxDevice, error)
}

var errNotADevice = errors.New("not a device node")

// hostDevices reads the real /dev.
type hostDevices struct{}

func (hostDevices) Device(path string) ([]specs.LinuxDevice, error) {
	resolved := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		resolved = r
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = path
		return []specs.LinuxDevice{*d}, nil
	}
	if !errors.Is(err, errNotADevice) {
		return nil, err
	}
	var devs []specs.LinuxDevice
	_ = filepath.WalkDir(resolved, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d, err := deviceFromPath(p); err == nil {
			rel, _ := filepath.Rel(resolved, p)
			d.Path = filepath.Join(path, rel)
			devs = append(devs, *d)
		}
		return nil
	})
	if len(devs) == 0 {
		return nil, err
	}
	return devs, nil
}

// All skips what runc or the default mounts provide inside the container,
// like containerd's HostDevices.
func (hostDevices) All() ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" {
			return nil
		}
		if d, err := deviceFromPath(p); err == nil {
			devs = append(devs, *d)
		}
		return nil
	})
	return devs, err
}

func deviceFromPath(path string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFIFO:
		typ = "p"
	default:
		return nil, errNotADevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path:     path,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

var (
	deviceCgroupRuleRe = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)
	devicePermsRe      = regexp.MustCompile(`^[rwm]{1,3}$`)
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules is Docker's device cgroup: deny everything, then allow
// the devices every container has. runc appends its own defaults (pts, ptmx,
// mknod of any device) after these.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 5), // zero
		allow(1, 3), // null
		allow(1, 9), // urandom
		allow(1, 8), // random
		allow(5, 0), // tty
		allow(5, 1), // console
		{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"}, // fuse
	}
}

// withDevices adds --device nodes and --device-cgroup-rule rules, or every
// host device when privileged.
func withDevices(hc *container.HostConfig, lookup DeviceLookup) specOpt {
	return func(s *specs.Spec) error {
		if hc.Privileged {
			all, err := lookup.All()
			if err != nil {
				return fmt.Errorf("listing host devices: %w", err)
			}
			s.Linux.Devices = append(s.Linux.Devices, all...)
			for _, m := range hc.Devices {
				if m.PathInContainer == "" || m.PathInContainer == m.PathOnHost {
					continue // already there
				}
				devs, err := mappedDevices(lookup, m)
				if err != nil {
					return err
				}
				s.Linux.Devices = append(s.Linux.Devices, devs...)
			}
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
			return nil
		}
		for _, m := range hc.Devices {
			devs, err := mappedDevices(lookup, m)
			if err != nil {
				return err
			}
			perms := m.CgroupPermissions
			if perms == "" {
				perms = "rwm"
			}
			for _, d := range devs {
				s.Linux.Devices = append(s.Linux.Devices, d)
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
					Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms,
				})
			}
		}
		for _, rule := range hc.DeviceCgroupRules {
			r, err := parseDeviceCgroupRule(rule)
			if err != nil {
				return err
			}
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, r)
		}
		return nil
	}
}

// mappedDevices resolves one --device mapping to nodes at their container paths.
func mappedDevices(lookup DeviceLookup, m container.DeviceMapping) ([]specs.LinuxDevice, error) {
	if m.CgroupPermissions != "" && !devicePermsRe.MatchString(m.CgroupPermissions) {
		return nil, invalid("invalid device mode: %s", m.CgroupPermissions)
	}
	if m.PathInContainer != "" && !filepath.IsAbs(m.PathInContainer) {
		return nil, invalid("%s is not an absolute path", m.PathInContainer)
	}
	devs, err := lookup.Device(m.PathOnHost)
	if err != nil {
		return nil, invalid("error gathering device information while adding custom device %q: %s", m.PathOnHost, err)
	}
	inCtr := m.PathInContainer
	if inCtr == "" {
		inCtr = m.PathOnHost
	}
	out := make([]specs.LinuxDevice, 0, len(devs))
	for _, d := range devs {
		d.Path = filepath.Join(inCtr, strings.TrimPrefix(d.Path, m.PathOnHost))
		out = append(out, d)
	}
	return out, nil
}

func parseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	m := deviceCgroupRuleRe.FindStringSubmatch(rule)
	if m == nil {
		return specs.LinuxDeviceCgroup{}, invalid("invalid device cgroup rule format: '%s'", rule)
	}
	num := func(v string) *int64 {
		if v == "*" {
			return i64(-1)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	major, minor := num(m[2]), num(m[3])
	if major == nil || minor == nil {
		return specs.LinuxDeviceCgroup{}, invalid("invalid device cgroup rule format: '%s'", rule)
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Major: major, Minor: minor, Access: m[4]}, nil
}

// checkDeviceRequests refuses what --gpus and --device-cdi ask for: berth
// has no device driver (dockerd's nvidia or cdi), so no request can be met.
// dockerd's words, at start, unclassified as in dockerd.
func checkDeviceRequests(reqs []container.DeviceRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	return fmt.Errorf("could not select device driver %q with capabilities: %v", reqs[0].Driver, reqs[0].Capabilities)
}
