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

func TestWritableTree(t *testing.T) {
	s := &Service{d: Deps{DataRoot: "/var/lib/berth"}}
	cases := []struct {
		in, root, rel string
		ok            bool
	}{
		{"/var/lib/berth/volumes/vv/_data/sub", "/var/lib/berth/volumes/vv/_data", "sub", true},
		{"/var/lib/berth/volumes/vv/_data/a/../b/c/", "/var/lib/berth/volumes/vv/_data", "b/c", true},
		{"/var/lib/berth/volumes/vv/_data", "", "", false}, // the volume's own directory
		{"/var/lib/berth/volumes/vv/other/x", "", "", false},
		{"/var/lib/berth/storage/overlay/abc/merged/etc", "/var/lib/berth/storage/overlay/abc/merged", "etc", true},
		{"/var/lib/berth/storage/overlay/abc/diff/x/y", "/var/lib/berth/storage/overlay/abc/diff", "x/y", true},
		{"/var/lib/berth/storage/overlay/abc", "", "", false},
		{"/var/lib/berthx/volumes/vv/_data/sub", "", "", false},
		{"/srv/data", "", "", false},
	}
	for _, tc := range cases {
		root, rel, ok := s.writableTree(tc.in)
		assert.Check(t, is.Equal(ok, tc.ok), tc.in)
		assert.Check(t, is.Equal(root, tc.root), tc.in)
		assert.Check(t, is.Equal(rel, tc.rel), tc.in)
	}
	root, rel := s.sourceBeneath(mounts.MountSpec{Type: mount.TypeBind, Source: "/srv/data"}, "")
	assert.Check(t, is.Equal(root, "/srv/data"))
	assert.Check(t, is.Equal(rel, ""))
	root, rel = s.sourceBeneath(mounts.MountSpec{Type: mount.TypeVolume, Source: "vv", Subpath: "s"}, "/v/_data")
	assert.Check(t, is.Equal(root, "/v/_data"))
	assert.Check(t, is.Equal(rel, "s"))
}
