package compat

import (
	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// CheckMounts refuses mount options newer than the client's API
// version, in dockerd's words: an older client that sets them would not
// get what it expects.
func CheckMounts(version string, hc *container.HostConfig) error {
	if hc == nil {
		return nil
	}
	for _, m := range hc.Mounts {
		switch {
		case httputil.VersionLessThan(version, "1.44") && m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive:
			return errdefs.ErrInvalidArgument.WithMessage("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
		case httputil.VersionLessThan(version, "1.45") && m.VolumeOptions != nil && m.VolumeOptions.Subpath != "":
			return errdefs.ErrInvalidArgument.WithMessage("VolumeOptions.Subpath needs API v1.45 or newer")
		case httputil.VersionLessThan(version, "1.48") && m.Type == mount.TypeImage:
			return errdefs.ErrInvalidArgument.WithMessage(`Mount type "Image" needs API v1.48 or newer`)
		}
	}
	return nil
}
