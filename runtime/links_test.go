package runtime

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func specEnv(t *testing.T, h *harness, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.s.stateDir(id), "config.json"))
	assert.NilError(t, err)
	var s specs.Spec
	assert.NilError(t, json.Unmarshal(b, &s))
	return s.Process.Env
}

func namesOf(t *testing.T, h *harness, id string) []string {
	t.Helper()
	list, err := h.s.List(context.Background(), ListOptions{All: true})
	assert.NilError(t, err)
	for _, c := range list {
		if c.ID == id {
			return c.Names
		}
	}
	t.Fatalf("%s not listed", id)
	return nil
}

func TestLegacyLinkLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	resp, err := h.s.Create(ctx, CreateRequest{Name: "db", Config: &container.Config{
		Image: "busybox", Cmd: []string{"sleep", "60"}, Env: []string{"FOO=1"}, Hostname: "dbhost",
		ExposedPorts: network.PortSet{network.MustParsePort("6379/tcp"): {}},
	}})
	assert.NilError(t, err)
	db := resp.ID
	assert.NilError(t, h.s.Start(ctx, "db"))
	t.Cleanup(func() { _ = h.s.Kill(ctx, db, "KILL") })

	web := create(t, h, "web", &container.HostConfig{Links: []string{"db:my-alias"}}, "sleep", "60")
	assert.NilError(t, h.s.Start(ctx, "web"))
	t.Cleanup(func() { _ = h.s.Kill(ctx, web, "KILL") })

	env := specEnv(t, h, web)
	for _, want := range []string{"MY_ALIAS_NAME=/web/my-alias", "MY_ALIAS_ENV_FOO=1", "MY_ALIAS_PORT=tcp://10.210.0.2:6379"} {
		assert.Check(t, slices.Contains(env, want), "%s not in %v", want, env)
	}
	hosts, err := os.ReadFile(filepath.Join(h.s.containerDir(web), "hosts"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(hosts), "10.210.0.2\tmy-alias dbhost db\n"))

	// a refresh that changes nothing does not write: the file a running
	// container reads is never rewritten for nothing
	hostsFile := filepath.Join(h.s.containerDir(web), "hosts")
	past := time.Unix(1e9, 0)
	assert.NilError(t, os.Chtimes(hostsFile, past, past))
	p, err := h.s.lookup("web")
	assert.NilError(t, err)
	p.mu.Lock()
	h.s.refreshLinkHosts(p)
	p.mu.Unlock()
	st, err := os.Stat(hostsFile)
	assert.NilError(t, err)
	assert.Check(t, st.ModTime().Equal(past), "rewritten at %v", st.ModTime())

	ins, err := h.s.Inspect(ctx, "web", false)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(ins.HostConfig.Links, []string{"/db:/web/my-alias"}))
	assert.Check(t, is.DeepEqual(namesOf(t, h, db), []string{"/db", "/web/my-alias"}))
	c, err := h.s.lookup("web/my-alias")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.rec.ID, db))
	_, err = h.s.lookup("/web/nosuch")
	assert.Check(t, errdefs.IsNotFound(err))

	assert.NilError(t, h.s.Rename(ctx, "db", "db2"))
	assert.NilError(t, h.s.Rename(ctx, "web", "web2"))
	ins, err = h.s.Inspect(ctx, "web2", false)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(ins.HostConfig.Links, []string{"/db2:/web2/my-alias"}))
	assert.Check(t, is.DeepEqual(namesOf(t, h, db), []string{"/db2", "/web2/my-alias"}))

	err = h.s.RemoveLink(ctx, "db2")
	assert.Check(t, is.Error(err, "Conflict, cannot remove the default link name of the container"))
	assert.Check(t, errdefs.IsNotFound(h.s.RemoveLink(ctx, "web2/nosuch")))
	assert.NilError(t, h.s.RemoveLink(ctx, "web2/my-alias"))
	ins, err = h.s.Inspect(ctx, "web2", false)
	assert.NilError(t, err)
	assert.Check(t, is.Len(ins.HostConfig.Links, 0))
	assert.Check(t, is.DeepEqual(namesOf(t, h, db), []string{"/db2"}))
	_, err = h.s.lookup("web2/my-alias")
	assert.Check(t, errdefs.IsNotFound(err))
}

func TestLegacyLinkNeedsRunningChild(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	create(t, h, "db", nil, "sleep", "60")
	web := create(t, h, "web", &container.HostConfig{Links: []string{"db"}}, "sleep", "60")
	err := h.s.Start(ctx, "web")
	assert.Check(t, is.ErrorContains(err, "Cannot link to a non running container: /db AS /web/db"))
	ins, err := h.s.Inspect(ctx, web, false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ins.State.Status, container.StateCreated))
}

func TestLinkCreateRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	create(t, h, "onhost", &container.HostConfig{NetworkMode: "host"}, "true")
	create(t, h, "plain", nil, "true")
	cases := []struct {
		name string
		hc   *container.HostConfig
		want string
	}{
		{"missing", &container.HostConfig{Links: []string{"nosuch:x"}}, "could not get container for nosuch: No such container: nosuch"},
		{"host child", &container.HostConfig{Links: []string{"onhost"}}, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{"host parent", &container.HostConfig{NetworkMode: "host", Links: []string{"plain"}}, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{"bad format", &container.HostConfig{Links: []string{"a:b:c"}}, "bad format for links: a:b:c"},
		{"volumes-from missing", &container.HostConfig{VolumesFrom: []string{"nosuch"}}, "No such container: nosuch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: tc.hc})
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.want))
		})
	}
	list, err := h.s.List(ctx, ListOptions{All: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 2), "a refused create left a container")

	// on a user-defined network links are only names: nothing is resolved,
	// and inspect shows none, as dockerd's
	id := create(t, h, "onnet", &container.HostConfig{NetworkMode: "mynet", Links: []string{"nosuch:x"}}, "true")
	ins, err := h.s.Inspect(ctx, id, false)
	assert.NilError(t, err)
	assert.Check(t, is.Len(ins.HostConfig.Links, 0))
}

func TestAdaptNamespaces(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	other := create(t, h, "other", nil, "true")
	cases := []struct {
		name             string
		def              container.IpcMode
		hc               container.HostConfig
		ipc, pid, rt     string
		notFound, badArg bool
	}{
		{name: "defaults", hc: container.HostConfig{}, ipc: "private", rt: "runc"},
		{name: "daemon default shareable", def: "shareable", ipc: "shareable", rt: "runc"},
		{name: "asked mode kept", def: "shareable", hc: container.HostConfig{IpcMode: "host"}, ipc: "host", rt: "runc"},
		{name: "names become ids", hc: container.HostConfig{IpcMode: "container:other", PidMode: "container:other"}, ipc: "container:" + other, pid: "container:" + other, rt: "runc"},
		{name: "missing ipc container", hc: container.HostConfig{IpcMode: "container:nosuch"}, notFound: true},
		{name: "missing pid container", hc: container.HostConfig{PidMode: "container:nosuch"}, notFound: true},
		{name: "unknown runtime", hc: container.HostConfig{Runtime: "kata"}, badArg: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.s.d.DefaultIpcMode = tc.def
			hc := tc.hc
			err := h.s.adaptNamespaces(&hc)
			switch {
			case tc.notFound:
				assert.Check(t, errdefs.IsNotFound(err), "%v", err)
			case tc.badArg:
				assert.Check(t, is.Error(err, "unknown or invalid runtime name: kata"))
			default:
				assert.NilError(t, err)
				assert.Check(t, is.Equal(string(hc.IpcMode), tc.ipc))
				assert.Check(t, is.Equal(string(hc.PidMode), tc.pid))
				assert.Check(t, is.Equal(hc.Runtime, tc.rt))
			}
		})
	}
	_, err := h.s.Inspect(ctx, other, false)
	assert.NilError(t, err)
}

func TestValidateNetMode(t *testing.T) {
	ports := network.PortSet{network.MustParsePort("80/tcp"): {}}
	cases := []struct {
		name string
		cfg  container.Config
		hc   container.HostConfig
		want string
	}{
		{name: "bridge with links", hc: container.HostConfig{NetworkMode: "bridge", Links: []string{"a"}}},
		{name: "container mode", hc: container.HostConfig{NetworkMode: "container:x"}},
		{name: "container without name", hc: container.HostConfig{NetworkMode: "container:"}, want: "invalid network mode: invalid container format container:<name|id>"},
		{name: "container and hostname", cfg: container.Config{Hostname: "h"}, hc: container.HostConfig{NetworkMode: "container:x"}, want: "conflicting options: hostname and the network mode"},
		{name: "container and links", hc: container.HostConfig{NetworkMode: "container:x", Links: []string{"a"}}, want: "conflicting options: container type network can't be used with links. This would result in undefined behavior"},
		{name: "container and dns", hc: container.HostConfig{NetworkMode: "container:x", DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, want: "conflicting options: dns and the network mode"},
		{name: "container and extra hosts", hc: container.HostConfig{NetworkMode: "container:x", ExtraHosts: []string{"a:1.2.3.4"}}, want: "conflicting options: custom host-to-IP mapping and the network mode"},
		{name: "container and publish", hc: container.HostConfig{NetworkMode: "container:x", PublishAllPorts: true}, want: "conflicting options: port publishing and the container type network mode"},
		{name: "container and expose", cfg: container.Config{ExposedPorts: ports}, hc: container.HostConfig{NetworkMode: "container:x"}, want: "conflicting options: port exposing and the container type network mode"},
		{name: "uts host and hostname", cfg: container.Config{Hostname: "h"}, hc: container.HostConfig{UTSMode: "host"}, want: "conflicting options: hostname and the UTS mode"},
		{name: "host and links", hc: container.HostConfig{NetworkMode: "host", Links: []string{"a"}}, want: "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateNetMode(&tc.cfg, &tc.hc)
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.Check(t, errdefs.IsInvalidArgument(err))
			assert.Check(t, is.Error(err, tc.want))
		})
	}
}

func TestCheckPlatform(t *testing.T) {
	amd64 := &Image{OS: "linux", Architecture: "amd64"}
	armv7 := &Image{OS: "linux", Architecture: "arm", Variant: "v7"}
	cases := []struct {
		want string
		img  *Image
		ok   bool
	}{
		{"", amd64, true},
		{"linux", amd64, true},
		{"linux/amd64", amd64, true},
		{"linux/x86_64", amd64, true},
		{"LINUX/AMD64", amd64, true},
		{"linux/arm64", amd64, false},
		{"windows/amd64", amd64, false},
		{"linux/arm", armv7, true},
		{"linux/arm/v7", armv7, true},
		{"linux/arm/v6", armv7, false},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			err := checkPlatform(tc.want, tc.img, "busybox")
			if tc.ok {
				assert.NilError(t, err)
				return
			}
			assert.Check(t, errdefs.IsNotFound(err), "%v", err)
			assert.Check(t, is.ErrorContains(err, "image with reference busybox was found but its platform"))
		})
	}
	assert.Check(t, errdefs.IsInvalidArgument(checkPlatform("a/b/c/d", amd64, "busybox")))
}

func TestReplaceHostsLine(t *testing.T) {
	base := "127.0.0.1\tlocalhost\n10.0.0.5\tself\n10.0.0.2\tdb dbhost db\n# 10.0.0.9 db\n"
	cases := []struct{ name, in, alias, line, want string }{
		{"replaced", base, "db", "10.0.0.3\tdb dbhost db\n", "127.0.0.1\tlocalhost\n10.0.0.5\tself\n10.0.0.3\tdb dbhost db\n# 10.0.0.9 db\n"},
		{"appended", base, "cache", "10.0.0.7\tcache c\n", base + "10.0.0.7\tcache c\n"},
		{"no final newline", "127.0.0.1\tlocalhost", "db", "10.0.0.3\tdb\n", "127.0.0.1\tlocalhost\n10.0.0.3\tdb\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.Equal(string(replaceHostsLine([]byte(tc.in), tc.alias, tc.line)), tc.want))
		})
	}
}

// TestHostsFileOnHostNetwork: on the host's network a container sees the
// host's /etc/hosts, unless it adds hosts of its own, as with dockerd.
func TestHostsFileOnHostNetwork(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "hosts")
	assert.NilError(t, os.WriteFile(file, []byte("127.0.0.1 localhost\n10.9.9.9 the-host\n"), 0o644))
	old := hostHostsFile
	hostHostsFile = file
	t.Cleanup(func() { hostHostsFile = old })

	rec := &Record{Config: &container.Config{Hostname: "h"}, HostConfig: &container.HostConfig{NetworkMode: "host"}}
	got, err := h.s.hostsFile(rec, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(got), "127.0.0.1 localhost\n10.9.9.9 the-host\n"))

	rec.HostConfig.ExtraHosts = []string{"extra:10.1.2.3"}
	got, err = h.s.hostsFile(rec, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(got), "127.0.0.1\tlocalhost\n"))
	assert.Check(t, is.Contains(string(got), "10.1.2.3\textra\n"))
	assert.Check(t, !strings.Contains(string(got), "the-host"))

	rec.HostConfig = &container.HostConfig{NetworkMode: "bridge"}
	got, err = h.s.hostsFile(rec, []legacyLink{{hosts: "10.0.0.2\tdb h2 db\n"}})
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(got), "the-host"))
	assert.Check(t, is.Contains(string(got), "10.0.0.2\tdb h2 db\n"))
}

func TestOverwriteInPlace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosts")
	assert.NilError(t, os.WriteFile(file, []byte("10.0.0.1\tdb\n10.0.0.2\tweb\n"), 0o644))
	before, err := os.Stat(file)
	assert.NilError(t, err)
	for _, data := range []string{"10.0.0.1\tdb\n10.0.0.22\tweb\n", "1.2.3.4\tx\n", ""} {
		assert.NilError(t, overwriteInPlace(file, []byte(data)))
		got, err := os.ReadFile(file)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), data))
	}
	after, err := os.Stat(file)
	assert.NilError(t, err)
	assert.Check(t, os.SameFile(before, after), "the bind-mounted inode must stay")
	assert.Check(t, overwriteInPlace(filepath.Join(t.TempDir(), "nosuch"), nil) != nil)
}
