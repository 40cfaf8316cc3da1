package integration

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type inspectedNetwork struct {
	Name, Id, Scope, Driver string
	EnableIPv4, EnableIPv6  bool
	Internal, Attachable    bool
	IPAM                    struct {
		Driver string
		Config []struct{ Subnet, Gateway, IPRange string }
	}
	Containers map[string]any
	Options    map[string]string
	Labels     map[string]string
}

func inspectNet(t *testing.T, d *testenv.Daemon, name string) inspectedNetwork {
	t.Helper()
	var out []inspectedNetwork
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "network", "inspect", name)), &out))
	assert.Assert(t, is.Len(out, 1))
	return out[0]
}

func dockerFails(t *testing.T, d *testenv.Daemon, msg string, args ...string) {
	t.Helper()
	r := d.Docker(args...)
	assert.Check(t, r.ExitCode != 0, "docker %s succeeded", strings.Join(args, " "))
	assert.Check(t, is.Contains(r.Stderr(), msg), "docker %s", strings.Join(args, " "))
}

func TestNetworkAPI(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	block := d.Net.Block

	ls := d.DockerOK(t, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
	for _, want := range []string{"bridge bridge local", "host host local", "none null local"} {
		assert.Check(t, is.Contains(ls, want))
	}
	br := inspectNet(t, d, "bridge")
	assert.Check(t, is.Equal(br.IPAM.Config[0].Subnet, netip.PrefixFrom(block.Addr(), 24).String()))
	assert.Check(t, is.Equal(br.Options["com.docker.network.bridge.name"], d.Net.Bridge))
	_, err := net.InterfaceByName(d.Net.Bridge)
	assert.NilError(t, err, "default bridge device")

	// auto subnet from the pool, labels
	id := strings.TrimSpace(d.DockerOK(t, "network", "create", "--label", "app=shop", "--label", "tier=front", "front"))
	assert.Check(t, is.Len(id, 64))
	n := inspectNet(t, d, "front")
	assert.Check(t, is.Equal(n.Id, id))
	assert.Check(t, is.Equal(n.Driver, "bridge"))
	assert.Check(t, is.Equal(n.Scope, "local"))
	assert.Check(t, n.EnableIPv4 && !n.EnableIPv6)
	assert.Check(t, is.Equal(n.IPAM.Driver, "default"))
	sub := netip.MustParsePrefix(n.IPAM.Config[0].Subnet)
	assert.Check(t, block.Contains(sub.Addr()) && sub.Bits() == 24, "subnet %s outside the daemon's pool %s", sub, block)
	assert.Check(t, is.Equal(n.IPAM.Config[0].Gateway, sub.Addr().Next().String()))
	assert.Check(t, is.DeepEqual(n.Labels, map[string]string{"app": "shop", "tier": "front"}))
	assert.Check(t, is.Len(n.Containers, 0))
	_, err = net.InterfaceByName("br-" + id[:12])
	assert.NilError(t, err, "bridge device of the user network")

	// explicit config
	custom := netip.PrefixFrom(netip.AddrFrom4([4]byte{block.Addr().As4()[0], block.Addr().As4()[1], block.Addr().As4()[2] + 8, 0}), 24)
	gw := custom.Addr().Next().Next().Next().Next().Next()                                                                                                     // .5
	rng := netip.PrefixFrom(custom.Addr().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next(), 28) // .16/28
	d.DockerOK(t, "network", "create", "--subnet", custom.String(), "--gateway", gw.String(), "--ip-range", rng.String(),
		"--internal", "--attachable", "-o", "com.docker.network.bridge.name=bx"+d.Net.Bridge[2:], "back")
	b := inspectNet(t, d, "back")
	assert.Check(t, is.Equal(b.IPAM.Config[0].Subnet, custom.String()))
	assert.Check(t, is.Equal(b.IPAM.Config[0].Gateway, gw.String()))
	assert.Check(t, is.Equal(b.IPAM.Config[0].IPRange, rng.String()))
	assert.Check(t, b.Internal && b.Attachable)
	_, err = net.InterfaceByName("bx" + d.Net.Bridge[2:])
	assert.NilError(t, err, "bridge named by option")

	// bad input, dockerd's words
	dockerFails(t, d, "network with name front already exists", "network", "create", "front")
	dockerFails(t, d, "invalid pool request: Pool overlaps with other one on this address space", "network", "create", "--subnet", custom.String(), "other")
	dockerFails(t, d, "invalid pool request: Pool overlaps with other one on this address space", "network", "create", "--subnet", block.String(), "other")
	dockerFails(t, d, "invalid CIDR address: 10.300.0.0/24", "network", "create", "--subnet", "10.300.0.0/24", "other")
	dockerFails(t, d, `plugin "nosuchdriver" not found`, "network", "create", "-d", "nosuchdriver", "other")
	dockerFails(t, d, "bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
	dockerFails(t, d, "host is a pre-defined network and cannot be removed", "network", "rm", "host")
	dockerFails(t, d, "network nope not found", "network", "inspect", "nope")
	dockerFails(t, d, "IPv4 or IPv6 must be enabled", "network", "create", "--ipv4=false", "other")

	// names and id prefixes resolve
	assert.Check(t, is.Equal(inspectNet(t, d, id[:7]).Name, "front"))

	// list filters
	names := func(args ...string) []string {
		return strings.Fields(d.DockerOK(t, append([]string{"network", "ls", "--format", "{{.Name}}"}, args...)...))
	}
	assert.Check(t, is.DeepEqual(names("--filter", "label=app=shop"), []string{"front"}))
	assert.Check(t, is.DeepEqual(names("--filter", "type=custom"), []string{"back", "front"}))
	assert.Check(t, is.DeepEqual(names("--filter", "type=builtin"), []string{"bridge", "host", "none"}))
	assert.Check(t, is.DeepEqual(names("--filter", "driver=null"), []string{"none"}))
	assert.Check(t, is.DeepEqual(names("--filter", "name=fro"), []string{"front"}))
	assert.Check(t, is.DeepEqual(names("--filter", "id="+id[:10]), []string{"front"}))
	assert.Check(t, is.DeepEqual(names("--filter", "dangling=true"), []string{"back", "front"}))
	dockerFails(t, d, "invalid filter 'color'", "network", "ls", "--filter", "color=red")

	// prune by label keeps the others
	out := d.DockerOK(t, "network", "prune", "-f", "--filter", "label=tier=front")
	assert.Check(t, is.Contains(out, "front"))
	assert.Check(t, is.DeepEqual(names("--filter", "type=custom"), []string{"back"}))
	_, err = net.InterfaceByName("br-" + id[:12])
	assert.Check(t, err != nil, "bridge of a pruned network is still there")

	// rm; events
	since := time.Now().Add(-time.Minute).Unix()
	d.DockerOK(t, "network", "rm", "back")
	ev := d.DockerOK(t, "events", "--since", itoa(since), "--until", itoa(time.Now().Unix()+1), "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}")
	for _, want := range []string{"create front bridge", "create back bridge", "destroy front bridge", "destroy back bridge"} {
		assert.Check(t, is.Contains(ev, want))
	}

	// connect/disconnect need a container
	d.DockerOK(t, "network", "create", "c1")
	dockerFails(t, d, "No such container: nosuch", "network", "connect", "c1", "nosuch")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestNetworksSurviveRestart: networks are in the store; the bridges come
// back after a restart; an idle daemon leaves nothing behind when it stops.
func TestNetworksSurviveRestart(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := strings.TrimSpace(d.DockerOK(t, "network", "create", "--label", "keep=1", "kept"))
	d.Restart(t, syscall.SIGTERM)
	n := inspectNet(t, d, "kept")
	assert.Check(t, is.Equal(n.Id, id))
	assert.Check(t, is.Equal(n.Labels["keep"], "1"))
	// berthd brings the host side up again at start
	d.DockerOK(t, "network", "create", "second")
	_, err := net.InterfaceByName("br-" + id[:12])
	assert.NilError(t, err, "bridge not restored")

	cfg := network.Config{Bridge: d.Net.Bridge, ExecRoot: d.ExecRoot}
	inv, err := network.InventoryOf(context.Background(), cfg, []string{d.Net.Bridge, "br-" + id[:12]})
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Bridges, 2))
	assert.Check(t, len(inv.Rules) > 0)
	assert.Check(t, is.Len(inv.Veths, 0))

	d.Stop(t)
	inv, err = network.InventoryOf(context.Background(), cfg, []string{d.Net.Bridge, "br-" + id[:12]})
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Bridges, 0), "an idle daemon removes its bridges when it stops")
	assert.Check(t, is.Len(inv.Rules, 0), "an idle daemon removes its rules when it stops")
	d.Start(t)
}

// TestNetworkDaemonsSideBySide: two daemons on one host, each with its own
// bridge, pool and chains; one's teardown leaves the other alone.
func TestNetworkDaemonsSideBySide(t *testing.T) {
	t.Parallel()
	d1 := testenv.StartDaemon(t)
	d2 := testenv.StartDaemon(t)
	d1.DockerOK(t, "network", "create", "same")
	d2.DockerOK(t, "network", "create", "same")
	s1 := netip.MustParsePrefix(inspectNet(t, d1, "same").IPAM.Config[0].Subnet)
	s2 := netip.MustParsePrefix(inspectNet(t, d2, "same").IPAM.Config[0].Subnet)
	assert.Check(t, !s1.Overlaps(s2), "%s and %s", s1, s2)
	d1.DockerOK(t, "network", "rm", "same")
	d1.Stop(t)
	inv, err := network.InventoryOf(context.Background(), network.Config{Bridge: d2.Net.Bridge, ExecRoot: d2.ExecRoot}, []string{d2.Net.Bridge})
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Bridges, 1))
	assert.Check(t, len(inv.Rules) > 0, "the other daemon's rules are gone")
	d1.Start(t)
}
