package oci

import (
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// defaultShmSize is Docker's /dev/shm size when HostConfig.ShmSize is 0.
const defaultShmSize = 64 << 20

func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// tmpfsFlags are the mount flags a tmpfs may carry (mount(8) names).
var tmpfsFlags = map[string]bool{
	"ro": true, "rw": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"exec": true, "noexec": true, "sync": true, "async": true, "dirsync": true,
	"mand": true, "nomand": true, "atime": true, "noatime": true, "diratime": true,
	"nodiratime": true, "relatime": true, "norelatime": true, "strictatime": true,
	"nostrictatime": true, "noswap": true,
}

// tmpfsFlagGroup makes opposite flags collide, so the later one wins.
func tmpfsFlagGroup(f string) string {
	switch f {
	case "rw":
		return "ro"
	case "async":
		return "sync"
	}
	if g, ok := strings.CutPrefix(f, "no"); ok && tmpfsFlags[g] {
		return g
	}
	return f
}

var propagationModes = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}

// ParseTmpfsOptions turns the value of a --tmpfs entry ("size=1m,mode=1777")
// into the mount options Docker gives that tmpfs: noexec,nosuid,nodev and
// rprivate, overridden by what the user wrote, later options winning.
// Unknown options and malformed values are ErrInvalidArgument.
func ParseTmpfsOptions(data string) ([]string, error) {
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	for _, o := range strings.Split(data, ",") {
		if o = strings.TrimSpace(o); o != "" {
			opts = append(opts, o)
		}
	}
	var out []string
	seen := map[string]bool{}
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		var key string
		switch {
		case o == "defaults":
			continue
		case tmpfsFlags[o]:
			key = "flag:" + tmpfsFlagGroup(o)
		case slices.Contains(propagationModes, o):
			key = "propagation"
		default:
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return nil, invalid("invalid tmpfs option %q", o)
			}
			if err := validateTmpfsData(k, v); err != nil {
				return nil, err
			}
			key = "data:" + k
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, o)
		}
	}
	slices.Reverse(out)
	return out, nil
}

func validateTmpfsData(k, v string) error {
	bad := func() error { return invalid("invalid tmpfs option %q: bad value %q", k, v) }
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad()
	}
	switch k {
	case "size", "nr_blocks", "nr_inodes":
		if n, ok := strings.CutSuffix(v, "%"); ok {
			if p, err := strconv.ParseUint(n, 10, 8); err != nil || p == 0 || p > 100 {
				return bad()
			}
			return nil
		}
		n := strings.TrimRight(v, "kKmMgGtTpPeE")
		if len(v)-len(n) > 1 || n == "" {
			return bad()
		}
		if _, err := strconv.ParseUint(n, 10, 64); err != nil {
			return bad()
		}
	case "mode":
		if m, err := strconv.ParseUint(v, 8, 32); err != nil || m > 0o7777 {
			return bad()
		}
	case "uid", "gid":
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return bad()
		}
	case "mpol":
		policy, _, _ := strings.Cut(v, ":")
		if !slices.Contains([]string{"default", "prefer", "bind", "interleave", "local"}, policy) {
			return bad()
		}
	case "huge":
		if !slices.Contains([]string{"never", "always", "within_size", "advise"}, v) {
			return bad()
		}
	default:
		return invalid("invalid tmpfs option %q", k)
	}
	return nil
}

// tmpfsMounts turns HostConfig.Tmpfs into mounts, in destination order so
// the spec does not depend on map iteration.
func tmpfsMounts(tmpfs map[string]string) ([]specs.Mount, error) {
	dests := make([]string, 0, len(tmpfs))
	for d := range tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	var out []specs.Mount
	for _, d := range dests {
		dest, err := mountDestination(d)
		if err != nil {
			return nil, err
		}
		opts, err := ParseTmpfsOptions(tmpfs[d])
		if err != nil {
			return nil, err
		}
		out = append(out, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	return out, nil
}

func mountDestination(d string) (string, error) {
	if !path.IsAbs(d) {
		return "", invalid("invalid mount path: '%s' mount path must be absolute", d)
	}
	d = path.Clean(d)
	if d == "/" {
		return "", invalid("invalid specification: destination can't be '/'")
	}
	return d, nil
}

// mountOptions says how the container's mounts differ from Docker's defaults.
type mountOptions struct {
	user            []specs.Mount // tmpfs and runtime mounts, replacing defaults at the same place
	shmSize         int64
	ipc             container.IpcMode
	readonlyRootfs  bool
	privileged      bool
	writableCgroups bool
}

// withMounts filters and adjusts the default mounts, adds the user's, and
// orders them so that a parent is mounted before what is mounted inside it.
func withMounts(o mountOptions) specOpt {
	return func(s *specs.Spec) error {
		user := map[string]bool{}
		for _, m := range o.user {
			user[m.Destination] = true
		}
		var mounts []specs.Mount
		for _, m := range s.Mounts {
			switch {
			case user[m.Destination]:
				continue
			case user["/dev"] && strings.HasPrefix(m.Destination, "/dev/"):
				continue
			case m.Destination == "/dev/shm" && o.ipc.IsNone():
				continue
			case m.Destination == "/dev/shm" && o.ipc.IsHost():
				m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
			case m.Destination == "/dev/shm":
				size := o.shmSize
				if size == 0 {
					size = defaultShmSize
				}
				m.Options = append(slices.Clone(m.Options), "size="+strconv.FormatInt(size, 10))
			}
			if o.readonlyRootfs {
				switch m.Destination {
				case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
				default:
					if !slices.Contains(m.Options, "ro") {
						m.Options = append(slices.Clone(m.Options), "ro")
					}
				}
			}
			if (o.privileged && m.Destination == "/sys") || (o.writableCgroups && m.Type == "cgroup") {
				m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(opt string) bool { return opt == "ro" })
			}
			mounts = append(mounts, m)
		}
		mounts = append(mounts, o.user...)
		sort.SliceStable(mounts, func(i, j int) bool {
			return mountDepth(mounts[i].Destination) < mountDepth(mounts[j].Destination)
		})
		s.Mounts = mounts
		return nil
	}
}

func mountDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// userMounts joins the tmpfs mounts and the runtime's mounts. A tmpfs at the
// place of another mount is a conflict, as in Docker; among the runtime's
// mounts the last one for a place wins.
func userMounts(tmpfs map[string]string, given []specs.Mount) ([]specs.Mount, error) {
	out, err := tmpfsMounts(tmpfs)
	if err != nil {
		return nil, err
	}
	fromTmpfs := len(out)
	index := map[string]int{}
	for i, m := range out {
		index[m.Destination] = i
	}
	for _, m := range given {
		dest, err := mountDestination(m.Destination)
		if err != nil {
			return nil, err
		}
		m.Destination = dest
		if i, ok := index[dest]; ok {
			if i < fromTmpfs {
				return nil, invalid("Duplicate mount point: %s", dest)
			}
			out[i] = m
			continue
		}
		index[dest] = len(out)
		out = append(out, m)
	}
	return out, nil
}
