package mounts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseBind(t *testing.T) {
	cases := []struct {
		raw  string
		want MountSpec
	}{
		{"/home", MountSpec{Type: mount.TypeVolume, Destination: "/home", Mode: "z", RW: true}},
		{"/with space", MountSpec{Type: mount.TypeVolume, Destination: "/with space", Mode: "z", RW: true}},
		{"/home:/home", MountSpec{Type: mount.TypeBind, Source: "/home", Destination: "/home", RW: true, Propagation: "rprivate", CreateMountpoint: true}},
		{"/tmp/../home/:/a/b/", MountSpec{Type: mount.TypeBind, Source: "/home", Destination: "/a/b", RW: true, Propagation: "rprivate", CreateMountpoint: true}},
		{"/tmp:/tmp2:ro", MountSpec{Type: mount.TypeBind, Source: "/tmp", Destination: "/tmp2", Mode: "ro", Propagation: "rprivate", CreateMountpoint: true}},
		{"/tmp:/tmp3:rw", MountSpec{Type: mount.TypeBind, Source: "/tmp", Destination: "/tmp3", Mode: "rw", RW: true, Propagation: "rprivate", CreateMountpoint: true}},
		{"/h:/c:ro,Z,rslave", MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "ro,Z,rslave", Label: "Z", Propagation: "rslave", CreateMountpoint: true}},
		{"/h:/c:z,shared,ro", MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "z,shared,ro", Label: "z", Propagation: "shared", CreateMountpoint: true}},
		{"/h:/c:rro", MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "rro", Propagation: "rprivate", CreateMountpoint: true, ReadOnlyForceRecursive: true}},
		{"/h:/c:ro-non-recursive", MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "ro-non-recursive", Propagation: "rprivate", CreateMountpoint: true, ReadOnlyNonRecursive: true}},
		{"/h:/c:cached", MountSpec{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "cached", RW: true, Propagation: "rprivate", CreateMountpoint: true}},
		{"name:/named1", MountSpec{Type: mount.TypeVolume, Source: "name", Destination: "/named1", Mode: "z", RW: true}},
		{"name:/named3:ro", MountSpec{Type: mount.TypeVolume, Source: "name", Destination: "/named3", Mode: "ro"}},
		{"my-vol_1.x:/d:nocopy", MountSpec{Type: mount.TypeVolume, Source: "my-vol_1.x", Destination: "/d", Mode: "nocopy", RW: true, NoCopy: true}},
		{"name:/d:ro,nocopy,z", MountSpec{Type: mount.TypeVolume, Source: "name", Destination: "/d", Mode: "ro,nocopy,z", Label: "z", NoCopy: true}},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseBind(tc.raw)
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestParseBindErrors(t *testing.T) {
	cases := map[string]string{
		"":                                "invalid volume specification: ''",
		":":                               "invalid volume specification: ':'",
		"::":                              "invalid volume specification: '::'",
		":::":                             "invalid volume specification: ':::'",
		"/tmp:::":                         "invalid volume specification: '/tmp:::'",
		":/tmp::":                         "invalid volume specification: ':/tmp::'",
		":test":                           "invalid volume specification: ':test'",
		":/test":                          "invalid volume specification: ':/test'",
		"/path:rw":                        "invalid volume specification: '/path:rw'",
		"/path:ro":                        "invalid volume specification: '/path:ro'",
		"/rw:rw":                          "invalid volume specification: '/rw:rw'",
		"path:ro":                         "invalid volume specification: 'path:ro'",
		"/path:shared":                    "invalid volume specification: '/path:shared'",
		"/tmp:":                           "invalid volume specification: '/tmp:'",
		"tmp:":                            "invalid volume specification: 'tmp:'",
		":test:":                          "invalid volume specification: ':test:'",
		"./":                              "invalid volume specification: './': invalid mount config for type \"volume\": invalid mount path: './' mount path must be absolute",
		"/:../":                           "invalid volume specification: '/:../': invalid mount config for type \"bind\": invalid mount path: '../' mount path must be absolute",
		"/tmp/hostdir:data":               "invalid volume specification: '/tmp/hostdir:data': invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute",
		"/tmp/hostdir:/":                  "invalid volume specification: '/tmp/hostdir:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
		"/":                               "invalid volume specification: '/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
		"/path:/path:sw":                  "invalid mode: sw",
		"/path:/path:rwz":                 "invalid mode: rwz",
		"/path:/path:ro,rshared,rslave":   "invalid mode: ro,rshared,rslave",
		"/path:/path:ro,z,rshared,rslave": "invalid mode: ro,z,rshared,rslave",
		"/path:/path:ro,rw":               "invalid mode: ro,rw",
		"/path:/path:bogus":               "invalid mode: bogus",
		"name:/absolute-path:shared":      "invalid volume specification: 'name:/absolute-path:shared': invalid mount config for type \"volume\": field BindOptions must not be specified",
		"name:/absolute-path:rprivate":    "invalid volume specification: 'name:/absolute-path:rprivate': invalid mount config for type \"volume\": field BindOptions must not be specified",
		"/host:/c:nocopy":                 "invalid volume specification: '/host:/c:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified",
		"rel/path:/data":                  `create rel/path: "rel/path" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
		"../x:/data":                      `create ../x: "../x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
		"a:/data":                         "create a: volume name is too short, names should be at least two alphanumeric characters",
	}
	for raw, want := range cases {
		t.Run(raw, func(t *testing.T) {
			_, err := ParseBind(raw)
			assert.Error(t, err, want)
			assert.Check(t, errdefs.IsInvalidArgument(err))
		})
	}
}

func TestFromMount(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		in   mount.Mount
		want MountSpec
	}{
		{"bind", mount.Mount{Type: mount.TypeBind, Source: dir + "/", Target: "/x/"},
			MountSpec{Type: mount.TypeBind, Source: dir, Destination: "/x", RW: true, Propagation: "rprivate"}},
		{"bind ro rshared", mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared", NonRecursive: true}},
			MountSpec{Type: mount.TypeBind, Source: dir, Destination: "/x", Propagation: "rshared", NonRecursive: true}},
		{"bind missing with create", mount.Mount{Type: mount.TypeBind, Source: dir + "/nope", Target: "/x", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			MountSpec{Type: mount.TypeBind, Source: dir + "/nope", Destination: "/x", RW: true, Propagation: "rprivate", CreateMountpoint: true}},
		{"anonymous volume", mount.Mount{Type: mount.TypeVolume, Target: "/data"},
			MountSpec{Type: mount.TypeVolume, Destination: "/data", Mode: "z", RW: true}},
		{"named volume with options", mount.Mount{Type: mount.TypeVolume, Source: "vol1", Target: "/data", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{
			NoCopy: true, Labels: map[string]string{"a": "b"}, Subpath: "sub/dir",
			DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}},
			MountSpec{Type: mount.TypeVolume, Source: "vol1", Destination: "/data", Mode: "z", NoCopy: true, Labels: map[string]string{"a": "b"}, Subpath: "sub/dir",
				Driver: "local", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}}},
		{"tmpfs", mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770, Options: [][]string{{"exec"}}}},
			MountSpec{Type: mount.TypeTmpfs, Destination: "/t", RW: true, TmpfsSize: 1 << 20, TmpfsMode: 0o1770, TmpfsOptions: []string{"exec"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromMount(tc.in)
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestFromMountErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		in   mount.Mount
		want string
	}{
		{mount.Mount{Type: mount.TypeBind, Source: "/nonexist-berth", Target: "/x"}, `invalid mount config for type "bind": bind source path does not exist: /nonexist-berth`},
		{mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/x"}, `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{mount.Mount{Type: mount.TypeBind, Target: "/x"}, `invalid mount config for type "bind": field Source must not be empty`},
		{mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", BindOptions: &mount.BindOptions{Propagation: "sideways"}}, `invalid mount config for type "bind": invalid propagation mode: sideways`},
		{mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/x", VolumeOptions: &mount.VolumeOptions{}}, `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{mount.Mount{Type: mount.TypeBind, Source: dir}, `invalid mount config for type "bind": field Target must not be empty`},
		{mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/"}, `invalid mount config for type "bind": invalid specification: destination can't be '/'`},
		{mount.Mount{Type: mount.TypeVolume, Target: "x"}, `invalid mount config for type "volume": invalid mount path: 'x' mount path must be absolute`},
		{mount.Mount{Type: mount.TypeVolume, Target: "/x", ReadOnly: true}, `invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes`},
		{mount.Mount{Type: mount.TypeVolume, Target: "/x", BindOptions: &mount.BindOptions{}}, `invalid mount config for type "volume": field BindOptions must not be specified`},
		{mount.Mount{Type: mount.TypeVolume, Target: "/x", VolumeOptions: &mount.VolumeOptions{Subpath: "a"}}, `invalid mount config for type "volume": must not set Subpath when using anonymous volumes`},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/x", VolumeOptions: &mount.VolumeOptions{Subpath: "../a"}}, `invalid mount config for type "volume": subpath must be a relative path within the volume`},
		{mount.Mount{Type: mount.TypeVolume, Source: "bad/name", Target: "/x"}, `create bad/name: "bad/name" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{mount.Mount{Type: mount.TypeTmpfs, Source: "foo", Target: "/x"}, `invalid mount config for type "tmpfs": field Source must not be specified`},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/x", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: -1}}, `invalid mount config for type "tmpfs": invalid tmpfs size: -1`},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/x", TmpfsOptions: &mount.TmpfsOptions{Mode: 0o20000}}, `invalid mount config for type "tmpfs": invalid tmpfs mode: 20000`},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/x", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"suid"}}}}, `invalid mount config for type "tmpfs": invalid option: suid`},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/x", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{}}}}, `invalid mount config for type "tmpfs": invalid option array length`},
		{mount.Mount{Type: "npipe", Target: "/x"}, `invalid mount config for type "npipe": mount type unknown`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := FromMount(tc.in)
			assert.Error(t, err, tc.want)
			assert.Check(t, errdefs.IsInvalidArgument(err))
		})
	}
	_, err := FromMount(mount.Mount{Type: mount.TypeImage, Source: "busybox", Target: "/x"})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.ErrorContains(err, `invalid mount config for type "image": image mounts are not supported by berth`))
}

func TestFromMountStatError(t *testing.T) {
	// root passes any permission check; a file as a parent gives ENOTDIR
	f := filepath.Join(t.TempDir(), "file")
	assert.NilError(t, os.WriteFile(f, nil, 0o644))
	_, err := FromMount(mount.Mount{Type: mount.TypeBind, Source: f + "/sub", Target: "/x"})
	assert.ErrorContains(t, err, "not a directory")
}

func TestParseTmpfs(t *testing.T) {
	got, err := ParseTmpfs("/run/", "size=1m,mode=1777,exec")
	assert.NilError(t, err)
	assert.DeepEqual(t, got, MountSpec{Type: mount.TypeTmpfs, Destination: "/run", RW: true, FromTmpfsMap: true, TmpfsOptions: []string{"size=1m", "mode=1777", "exec"}})
	assert.DeepEqual(t, got.OCITmpfsOptions(), []string{"nosuid", "nodev", "rprivate", "size=1m", "mode=1777", "exec"})

	got, err = ParseTmpfs("/ro", "ro,size=50%")
	assert.NilError(t, err)
	assert.Check(t, !got.RW)
	assert.DeepEqual(t, got.OCITmpfsOptions(), []string{"noexec", "nosuid", "nodev", "rprivate", "size=50%", "ro"})

	got, err = ParseTmpfs("/plain", "")
	assert.NilError(t, err)
	assert.DeepEqual(t, got.OCITmpfsOptions(), []string{"noexec", "nosuid", "nodev", "rprivate"})

	for dest, data := range map[string]string{
		"/run": "size=abc", "/r2": "bogus", "/r3": "mode=999", "/r4": "uid=x", "/r5": "size=-1",
	} {
		_, err := ParseTmpfs(dest, data)
		assert.Check(t, errdefs.IsInvalidArgument(err), "%s:%s", dest, data)
		assert.Check(t, is.ErrorContains(err, "invalid tmpfs option"))
	}
	_, err = ParseTmpfs("run", "")
	assert.Error(t, err, "invalid mount path: 'run' mount path must be absolute")
	_, err = ParseTmpfs("/", "")
	assert.Error(t, err, "invalid specification: destination can't be '/'")
}

func TestTmpfsData(t *testing.T) {
	cases := []struct {
		spec MountSpec
		want string
	}{
		{MountSpec{TmpfsSize: 1 << 20, TmpfsMode: 0o700}, "mode=700,size=1m"},
		{MountSpec{TmpfsSize: 3 << 30}, "size=3g"},
		{MountSpec{TmpfsSize: 3072}, "size=3k"},
		{MountSpec{TmpfsSize: 1000}, "size=1000"},
		{MountSpec{TmpfsMode: 0o1770, TmpfsOptions: []string{"exec"}}, "mode=1770,exec"},
		{MountSpec{}, ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.spec.TmpfsData(), tc.want)
	}
	spec := MountSpec{Type: mount.TypeTmpfs, RW: true, TmpfsSize: 1 << 20, TmpfsOptions: []string{"exec"}}
	assert.DeepEqual(t, spec.OCITmpfsOptions(), []string{"nosuid", "nodev", "rprivate", "size=1m", "exec"})
}

func TestToMountPoint(t *testing.T) {
	b, err := ParseBind("/tmp/hostdir:/data:ro,Z")
	assert.NilError(t, err)
	assert.DeepEqual(t, b.ToMountPoint(), container.MountPoint{Type: "bind", Source: "/tmp/hostdir", Destination: "/data", Mode: "ro,Z", RW: false, Propagation: "rprivate"})

	v, err := ParseBind("named1:/n:nocopy")
	assert.NilError(t, err)
	v = v.ForVolume("named1", "/var/lib/berth/volumes/named1/_data")
	assert.DeepEqual(t, v.ToMountPoint(), container.MountPoint{Type: "volume", Name: "named1", Source: "/var/lib/berth/volumes/named1/_data", Destination: "/n", Driver: "local", Mode: "nocopy", RW: true})

	a, err := ParseBind("/anon")
	assert.NilError(t, err)
	assert.Check(t, a.IsAnonymous())
	a = a.ForVolume("abc123", "/v/abc123/_data")
	assert.DeepEqual(t, a.ToMountPoint(), container.MountPoint{Type: "volume", Name: "abc123", Source: "/v/abc123/_data", Destination: "/anon", Driver: "local", Mode: "z", RW: true})

	tm, err := FromMount(mount.Mount{Type: mount.TypeTmpfs, Target: "/t"})
	assert.NilError(t, err)
	assert.DeepEqual(t, tm.ToMountPoint(), container.MountPoint{Type: "tmpfs", Destination: "/t", RW: true})
}

func TestParseVolumesFrom(t *testing.T) {
	id, mode, err := ParseVolumesFrom("c1")
	assert.NilError(t, err)
	assert.Equal(t, id+" "+mode, "c1 rw")
	id, mode, err = ParseVolumesFrom("c1:ro")
	assert.NilError(t, err)
	assert.Equal(t, id+" "+mode, "c1 ro")
	assert.Check(t, ReadOnlyMode(mode))
	for spec, want := range map[string]string{
		"":             "volumes-from specification cannot be an empty string",
		"c1:bogus":     "invalid mode: bogus",
		"c1:ro,shared": "invalid mode: ro,shared",
		"c1:nocopy":    "invalid mode: nocopy",
	} {
		_, _, err := ParseVolumesFrom(spec)
		assert.Error(t, err, want)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"ab", "my-vol", "a.b_c-d", "0x", strings.Repeat("f", 64)} {
		assert.NilError(t, ValidateName(ok), ok)
	}
	for _, bad := range []string{"", "a", "-ab", ".ab", "a/b", "a b", "ünï", "..", "x:y"} {
		assert.Check(t, errdefs.IsInvalidArgument(ValidateName(bad)), bad)
	}
}

// FuzzParseBind checks that no input panics, that errors are always
// classified, and that whatever parses is an absolute, clean, non-root
// destination with a type the runtime knows.
func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/a", "n:/a", "/h:/c:ro,Z,rshared", "::", "a:b:c:d", "/h:/c:nocopy", "x:/y:ro,nocopy", "/h:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		spec, err := ParseBind(raw)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: unclassified error %v", raw, err)
			}
			return
		}
		if spec.Destination == "/" || !strings.HasPrefix(spec.Destination, "/") || filepath.Clean(spec.Destination) != spec.Destination {
			t.Fatalf("%q: bad destination %q", raw, spec.Destination)
		}
		switch spec.Type {
		case mount.TypeBind:
			if !strings.HasPrefix(spec.Source, "/") {
				t.Fatalf("%q: relative bind source %q", raw, spec.Source)
			}
		case mount.TypeVolume:
			if spec.Source != "" && ValidateName(spec.Source) != nil {
				t.Fatalf("%q: invalid volume name accepted: %q", raw, spec.Source)
			}
		default:
			t.Fatalf("%q: type %q", raw, spec.Type)
		}
	})
}

// FuzzParseTmpfs checks that the Tmpfs map parser never panics and only
// lets through options it knows.
func FuzzParseTmpfs(f *testing.F) {
	f.Add("/run", "size=1m,mode=1777")
	f.Add("/x", "exec,ro,uid=1000")
	f.Fuzz(func(t *testing.T, dest, data string) {
		spec, err := ParseTmpfs(dest, data)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, o := range spec.OCITmpfsOptions() {
			if strings.ContainsAny(o, ",") {
				t.Fatalf("option with a comma: %q", o)
			}
		}
	})
}
