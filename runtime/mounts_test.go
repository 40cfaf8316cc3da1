package runtime

import (
	"testing"

	"github.com/berthd/berth/internal/safepath"
	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBindMountOptions(t *testing.T) {
	ro := "ro"
	if safepath.RecursiveReadOnlySupported() {
		ro = "rro"
	}
	bind := mounts.MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c"}
	with := func(f func(*mounts.MountSpec)) mounts.MountSpec {
		m := bind
		f(&m)
		return m
	}
	cases := []struct {
		name string
		in   mounts.MountSpec
		opts []string
		err  string
	}{
		{"writable", with(func(m *mounts.MountSpec) { m.RW = true }), []string{"rbind", "rprivate"}, ""},
		{"read-only is recursive", bind, []string{"rbind", "rprivate", ro}, ""},
		{"non-recursive read-only", with(func(m *mounts.MountSpec) { m.ReadOnlyNonRecursive = true }), []string{"rbind", "rprivate", "ro"}, ""},
		{"forced", with(func(m *mounts.MountSpec) { m.ReadOnlyForceRecursive = true }), []string{"rbind", "rprivate", ro}, ""},
		{"bind, rslave", with(func(m *mounts.MountSpec) { m.NonRecursive, m.Propagation, m.RW = true, "rslave", true }), []string{"bind", "rslave"}, ""},
		{"writable and non-recursive", with(func(m *mounts.MountSpec) { m.RW, m.ReadOnlyNonRecursive = true, true }), nil, "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"},
		{"writable and forced", with(func(m *mounts.MountSpec) { m.RW, m.ReadOnlyForceRecursive = true, true }), nil, "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"},
		{"both", with(func(m *mounts.MountSpec) { m.ReadOnlyNonRecursive, m.ReadOnlyForceRecursive = true, true }), nil, "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"},
	}
	for _, tc := range cases {
		got, err := bindMount("/src", tc.in)
		if tc.err != "" {
			assert.Check(t, errdefs.IsInvalidArgument(err), tc.name)
			assert.Check(t, is.Error(err, tc.err), tc.name)
			continue
		}
		assert.NilError(t, err, tc.name)
		assert.Check(t, is.DeepEqual(got.Options, tc.opts), tc.name)
		assert.Check(t, is.Equal(got.Source, "/src"), tc.name)
		assert.Check(t, is.Equal(got.Destination, "/c"), tc.name)
	}
}
