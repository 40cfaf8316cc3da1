package mounts

import (
	"fmt"
	"path"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// tmpfsFlags are the mount flags a Tmpfs map entry may carry; paired flags
// share a key so that the last one wins when options are merged.
var tmpfsFlags = map[string]string{
	"ro": "rw", "rw": "rw",
	"exec": "exec", "noexec": "exec",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"mand":    "mand", "nomand": "mand",
	"private": "propagation", "rprivate": "propagation", "shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation", "unbindable": "propagation", "runbindable": "propagation",
}

// tmpfsDataKeys are the tmpfs data options dockerd accepts.
var tmpfsDataKeys = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true, "huge": true}

// ParseTmpfs parses one HostConfig.Tmpfs entry (destination -> "size=1m,
// mode=1777,noexec"...). Unlike dockerd, which only finds a bad option when
// the kernel refuses it at start, options are checked here so that create
// fails with a 400 and leaves nothing behind.
func ParseTmpfs(dest, data string) (MountSpec, error) {
	if err := validateNotRoot(dest); err != nil {
		return MountSpec{}, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if err := validateAbsolute(dest); err != nil {
		return MountSpec{}, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	spec := MountSpec{Type: mount.TypeTmpfs, Destination: cleanPath(dest), RW: true, FromTmpfsMap: true}
	if data == "" {
		return spec, nil
	}
	for _, o := range strings.Split(data, ",") {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case o == "":
			continue
		case !hasValue && tmpfsFlags[k] != "":
			if k == "ro" {
				spec.RW = false
			} else if k == "rw" {
				spec.RW = true
			} else {
				spec.TmpfsOptions = append(spec.TmpfsOptions, k)
			}
		case hasValue && tmpfsDataKeys[k]:
			if err := checkTmpfsValue(k, v); err != nil {
				return MountSpec{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tmpfs option %q for %s: %v", o, dest, err))
			}
			spec.TmpfsOptions = append(spec.TmpfsOptions, o)
		default:
			return MountSpec{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tmpfs option %q for %s", o, dest))
		}
	}
	return spec, nil
}

func checkTmpfsValue(k, v string) error {
	switch k {
	case "size":
		// the kernel also takes a percentage of RAM
		if p, ok := strings.CutSuffix(v, "%"); ok {
			if _, err := units.RAMInBytes(p); err != nil || p == "" {
				return fmt.Errorf("invalid size: '%s'", v)
			}
			return nil
		}
		if n, err := units.RAMInBytes(v); err != nil || n < 0 {
			return fmt.Errorf("invalid size: '%s'", v)
		}
	case "mode":
		var m uint32
		if _, err := fmt.Sscanf(v, "%o", &m); err != nil || m > 0o7777 || strings.TrimLeft(v, "01234567") != "" {
			return fmt.Errorf("invalid mode: '%s'", v)
		}
	case "uid", "gid", "nr_inodes", "nr_blocks":
		if strings.TrimLeft(strings.TrimRight(v, "kmgKMG"), "0123456789") != "" || v == "" {
			return fmt.Errorf("invalid number: '%s'", v)
		}
	}
	return nil
}

func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return path.Clean(p)
}

// mergeTmpfsOptions keeps the last of each option (by key for key=value,
// by kind for flags such as exec/noexec), in order of last appearance.
func mergeTmpfsOptions(opts []string) []string {
	seen := map[string]bool{}
	var rev []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		if o == "" {
			continue
		}
		key := o
		if k, _, ok := strings.Cut(o, "="); ok {
			key = k + "="
		} else if f := tmpfsFlags[o]; f != "" {
			key = f
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		rev = append(rev, o)
	}
	out := make([]string, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}
