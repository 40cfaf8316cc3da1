package compat

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCheckMounts(t *testing.T) {
	force := mount.Mount{Type: mount.TypeBind, Source: "/x", Target: "/x", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true}}
	subpath := mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{Subpath: "s"}}
	image := mount.Mount{Type: mount.TypeImage, Source: "busybox", Target: "/i"}
	cases := []struct {
		version string
		m       mount.Mount
		want    string
	}{
		{"1.43", force, "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"},
		{"1.44", force, ""},
		{"1.44", subpath, "VolumeOptions.Subpath needs API v1.45 or newer"},
		{"1.45", subpath, ""},
		{"1.47", image, `Mount type "Image" needs API v1.48 or newer`},
		{"1.48", image, ""},
		{"1.24", mount.Mount{Type: mount.TypeBind, Source: "/x", Target: "/x", ReadOnly: true}, ""},
	}
	for _, tc := range cases {
		err := CheckMounts(tc.version, &container.HostConfig{Mounts: []mount.Mount{tc.m}})
		if tc.want == "" {
			assert.Check(t, err, tc.version)
			continue
		}
		assert.Check(t, errdefs.IsInvalidArgument(err), tc.version)
		assert.Check(t, is.Error(err, tc.want), tc.version)
	}
	assert.NilError(t, CheckMounts("1.24", nil))
}
