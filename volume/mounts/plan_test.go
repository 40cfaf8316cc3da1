package mounts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
)

func dests(specs []MountSpec) []string {
	out := []string{}
	for _, m := range specs {
		out = append(out, m.String())
	}
	return out
}

func TestPlan(t *testing.T) {
	host := t.TempDir()
	from := Inherit([]MountSpec{
		{Type: mount.TypeVolume, Source: "v4", Destination: "/data", Mode: "z", RW: true},
		{Type: mount.TypeBind, Source: "/tmp", Destination: "/h", Mode: "ro", Propagation: "rprivate"},
		{Type: mount.TypeVolume, Source: "shared", Destination: "/shared", Mode: "z", RW: true},
		{Type: mount.TypeTmpfs, Destination: "/run", RW: true, FromTmpfsMap: true},
	}, "ro")
	got, err := Plan(Request{
		Binds:       []string{"v5:/data", host + ":/host:ro"},
		Mounts:      []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t"}},
		Tmpfs:       map[string]string{"/cache": "size=1m"},
		Volumes:     map[string]struct{}{"/image-vol": {}, "/cache": {}, "/host": {}, "/data/": {}},
		VolumesFrom: from,
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, dests(got), []string{
		"tmpfs :/cache (rw)",   // Tmpfs wins over the image VOLUME
		"volume v5:/data (rw)", // Binds replace VolumesFrom
		"bind /tmp:/h (ro)",    // inherited, read-only
		"bind " + host + ":/host (ro)",
		"volume :/image-vol (rw)", // anonymous
		"volume shared:/shared (ro)",
		"tmpfs :/t (rw)",
	})
	for _, m := range got {
		switch m.Destination {
		case "/image-vol":
			assert.Equal(t, m.Mode, "", "an image VOLUME has no mode")
			assert.Check(t, m.IsAnonymous())
		case "/shared":
			assert.Equal(t, m.Mode, "")
			assert.Check(t, m.NoCopy, "inherited volumes are not copied up again")
		}
	}
}

func TestPlanDuplicates(t *testing.T) {
	host := t.TempDir()
	cases := []Request{
		{Binds: []string{"/tmp:/data", "v1:/data"}},
		{Binds: []string{"/tmp:/data"}, Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/data"}}},
		{Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/data"}, {Type: mount.TypeTmpfs, Target: "/data/"}}},
		{Tmpfs: map[string]string{"/data": ""}, Binds: []string{"v2:/data"}},
		{Tmpfs: map[string]string{"/data": ""}, Mounts: []mount.Mount{{Type: mount.TypeBind, Source: host, Target: "/data"}}},
	}
	for _, r := range cases {
		_, err := Plan(r)
		assert.Error(t, err, "Duplicate mount point: /data")
		assert.Check(t, errdefs.IsInvalidArgument(err))
	}
	_, err := Plan(Request{Binds: []string{"bad/name:/x"}})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = Plan(Request{Volumes: map[string]struct{}{"rel": {}}})
	assert.Error(t, err, "invalid mount path: 'rel' mount path must be absolute")
}

func TestInheritReadWrite(t *testing.T) {
	src := []MountSpec{{Type: mount.TypeVolume, Source: "a", Destination: "/a", RW: true}, {Type: mount.TypeVolume, Source: "b", Destination: "/b"}}
	got := Inherit(src, "rw")
	assert.Check(t, got[0].RW)
	assert.Check(t, !got[1].RW, "rw does not make a read-only mount writable")
}

// TestPlanDaemonRoot: binds of the data root, inside it or above it are
// rslave unless they ask for rslave or rshared; other propagations are
// refused, as dockerd's TestMountDaemonRoot expects.
func TestPlanDaemonRoot(t *testing.T) {
	root := t.TempDir()
	assert.NilError(t, os.Mkdir(root+"/x", 0o700))
	bind := func(src, prop string) mount.Mount {
		m := mount.Mount{Type: mount.TypeBind, Source: src, Target: "/foo"}
		if prop != "" {
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(prop)}
		}
		return m
	}
	cases := []struct {
		name string
		req  Request
		want mount.Propagation
		bad  bool
	}{
		{name: "root, none", req: Request{Binds: []string{root + ":/foo"}}, want: mount.PropagationRSlave},
		{name: "subpath, none", req: Request{Binds: []string{root + "/containers:/foo:ro"}}, want: mount.PropagationRSlave},
		{name: "above, none", req: Request{Binds: []string{filepath.Dir(root) + ":/foo"}}, want: mount.PropagationRSlave},
		{name: "rshared kept", req: Request{Binds: []string{root + ":/foo:rshared"}}, want: mount.PropagationRShared},
		{name: "rslave kept", req: Request{Mounts: []mount.Mount{bind(root, "rslave")}}, want: mount.PropagationRSlave},
		{name: "mount, none", req: Request{Mounts: []mount.Mount{bind(root+"/x", "")}}, want: mount.PropagationRSlave},
		{name: "private refused", req: Request{Binds: []string{root + ":/foo:private"}}, bad: true},
		{name: "rprivate refused", req: Request{Mounts: []mount.Mount{bind(root, "rprivate")}}, bad: true},
		{name: "slave refused", req: Request{Binds: []string{root + ":/foo:ro,slave"}}, bad: true},
		{name: "shared refused", req: Request{Mounts: []mount.Mount{bind(root, "shared")}}, bad: true},
		{name: "elsewhere untouched", req: Request{Binds: []string{"/srv:/foo:private"}}, want: mount.PropagationPrivate},
		{name: "elsewhere default", req: Request{Binds: []string{"/srv:/foo"}}, want: mount.PropagationRPrivate},
		{name: "volume untouched", req: Request{Binds: []string{"vol:/foo"}}, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.DaemonRoot = root + "/"
			got, err := Plan(tc.req)
			if tc.bad {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				assert.ErrorContains(t, err, `must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root`)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, len(got), 1)
			assert.Equal(t, got[0].Propagation, tc.want)
		})
	}
}

// API < 1.44: read-only binds stay read-only at the top only; volumes,
// writable binds and what VolumesFrom brings are left as they are.
func TestPlanDefaultReadOnlyNonRecursive(t *testing.T) {
	host := t.TempDir()
	from := Inherit([]MountSpec{{Type: mount.TypeBind, Source: "/tmp", Destination: "/inherited", RW: true}}, "ro")
	for _, old := range []bool{true, false} {
		got, err := Plan(Request{
			Binds: []string{host + ":/ro:ro", host + ":/rw", "vv:/vol:ro"},
			Mounts: []mount.Mount{
				{Type: mount.TypeBind, Source: host, Target: "/m-ro", ReadOnly: true},
				{Type: mount.TypeBind, Source: host, Target: "/m-force", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true}},
			},
			VolumesFrom:                 from,
			DefaultReadOnlyNonRecursive: old,
		})
		assert.NilError(t, err)
		nonRecursive := map[string]bool{}
		for _, m := range got {
			nonRecursive[m.Destination] = m.ReadOnlyNonRecursive
		}
		assert.DeepEqual(t, nonRecursive, map[string]bool{
			"/ro": old, "/m-ro": old, "/m-force": old,
			"/rw": false, "/vol": false, "/inherited": false,
		})
	}
}
