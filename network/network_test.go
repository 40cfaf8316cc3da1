package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/events"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/network/ipam"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	mdns "github.com/miekg/dns"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// These tests make real bridges, namespaces, veths and rules, with names
// from a test network slot; they need root (make unit runs as root).

type env struct {
	m    *Manager
	db   *store.DB
	cfg  Config
	slot testenv.NetSlot
	bus  *events.Bus
	// dbPath is the store's file
	dbPath string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testenv.RequireRoot(t)
	slot := testenv.TakeNetSlot(t)
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "berth.db"))
	assert.NilError(t, err)
	cfg := DefaultConfig(filepath.Join(dir, "run"))
	cfg.DNSZone = "berth.internal"
	cfg.Bridge = slot.Bridge
	cfg.BIP = netip.MustParsePrefix(slot.BIP)
	pool, err := ipam.ParsePool(slot.Pool)
	assert.NilError(t, err)
	pool6, err := ipam.ParsePool(slot.Pool6)
	assert.NilError(t, err)
	cfg.Pools = []ipam.Pool{pool, pool6}
	// no upstream resolvers: names berth does not know fail fast
	cfg.ResolvConf = filepath.Join(dir, "resolv.conf")
	assert.NilError(t, os.WriteFile(cfg.ResolvConf, []byte("nameserver 127.0.0.53\n"), 0o644))
	e := &env{db: db, cfg: cfg, slot: slot, bus: events.New(100), dbPath: filepath.Join(dir, "berth.db")}
	e.m = e.manager(t)
	t.Cleanup(func() {
		_ = e.m.Close()
		_ = db.Close()
		testenv.UnmountUnder(dir)
	})
	return e
}

func (e *env) manager(t testing.TB) *Manager {
	m, err := New(Deps{DB: e.db, Events: e.bus, Config: e.cfg})
	assert.NilError(t, err)
	return m
}

// inNS runs fn on a thread in the namespace at path; the thread is thrown
// away afterwards.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serveIn listens on port in the sandbox and answers every connection
// with msg.
func serveIn(t *testing.T, nsPath string, port int, msg string) {
	t.Helper()
	var l net.Listener
	assert.NilError(t, inNS(nsPath, func() (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	}()
}

func fetch(addr string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 700*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// reachIn is fetchIn for an address that must answer: it retries for a
// few seconds (a loaded machine can take its time over a first ARP).
func reachIn(nsPath, addr string) (string, error) {
	var out string
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if out, err = fetchIn(nsPath, addr); err == nil {
			return out, nil
		}
	}
	return out, err
}

func fetchIn(nsPath, addr string) (string, error) {
	var out string
	err := inNS(nsPath, func() (err error) {
		out, err = fetch(addr)
		return err
	})
	return out, err
}

func lookupIn(t *testing.T, nsPath string, server netip.Addr, name string, qtype uint16) (*mdns.Msg, time.Duration) {
	t.Helper()
	var resp *mdns.Msg
	var rtt time.Duration
	assert.NilError(t, inNS(nsPath, func() (err error) {
		c := &mdns.Client{Timeout: 2 * time.Second}
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), qtype)
		resp, rtt, err = c.Exchange(m, net.JoinHostPort(server.String(), "53"))
		return err
	}))
	return resp, rtt
}

func aRecords(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*mdns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

type ctr struct {
	id, name, ns string
	eps          map[string]*network.EndpointSettings
}

func (e *env) start(t testing.TB, name string) *ctr {
	t.Helper()
	id := strings.Repeat(fmt.Sprintf("%x", len(name)+int(name[0])), 8)[:12] + fmt.Sprintf("%052x", time.Now().UnixNano())
	ns, err := e.m.CreateSandbox(context.Background(), id)
	assert.NilError(t, err)
	return &ctr{id: id, name: name, ns: ns, eps: map[string]*network.EndpointSettings{}}
}

func (e *env) attach(t *testing.T, c *ctr, net string, primary bool, aliases ...string) *network.EndpointSettings {
	t.Helper()
	start := time.Now()
	es, err := e.m.Attach(context.Background(), c.ns, AttachRequest{
		ContainerID: c.id, ContainerName: c.name, Hostname: c.id[:12], Network: net, Aliases: aliases, Primary: primary,
	})
	assert.NilError(t, err)
	t.Logf("attach %s to %s: %v", c.name, net, time.Since(start))
	c.eps[net] = es
	return es
}

func TestContainersOnBridges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	front, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "front", Labels: map[string]string{"app": "x"}})
	assert.NilError(t, err)
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "back"})
	assert.NilError(t, err)

	a, b, c := e.start(t, "a"), e.start(t, "b"), e.start(t, "c")
	esA := e.attach(t, a, "front", true)
	esB := e.attach(t, b, "front", true, "web", "www")
	esC := e.attach(t, c, "back", true)

	fr, err := e.m.InspectNetwork(ctx, "front")
	assert.NilError(t, err)
	gw := fr.IPAM.Config[0].Gateway
	assert.Check(t, is.Equal(esA.Gateway, gw))
	assert.Check(t, is.Equal(esA.NetworkID, front.ID))
	assert.Check(t, is.Len(esA.EndpointID, 64))
	assert.Check(t, fr.IPAM.Config[0].Subnet.Contains(esA.IPAddress))
	assert.Check(t, is.Equal(esA.IPPrefixLen, 24))
	assert.Check(t, is.DeepEqual(esB.DNSNames, []string{"b", "web", "www", b.id[:12]}))
	assert.Check(t, is.Len(fr.Containers, 2))
	assert.Check(t, is.Equal(fr.Containers[b.id].IPv4Address, netip.PrefixFrom(esB.IPAddress, 24)))
	assert.Check(t, is.Equal(fr.Containers[b.id].Name, "b"))

	// eth0 with the address, MAC and default route inside the sandbox
	assert.NilError(t, inNS(a.ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().HardwareAddr.String() != esA.MacAddress.String() {
			return fmt.Errorf("mac %s, want %s", l.Attrs().HardwareAddr, esA.MacAddress)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == gw.String() {
				return nil
			}
		}
		return fmt.Errorf("no default route via %s in %v", gw, routes)
	}))

	serveIn(t, b.ns, 80, "hello from b")
	serveIn(t, c.ns, 80, "hello from c")

	// same network: reachable; the DNS server answers names, aliases, ids
	got, err := reachIn(a.ns, net.JoinHostPort(esB.IPAddress.String(), "80"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, "hello from b"))
	var rtts []time.Duration
	for _, name := range []string{"b", "web", "www.berth.internal", b.id[:12], "B"} {
		resp, rtt := lookupIn(t, a.ns, gw, name, mdns.TypeA)
		rtts = append(rtts, rtt)
		assert.Check(t, is.DeepEqual(aRecords(resp), []string{esB.IPAddress.String()}), name)
	}
	t.Logf("DNS answer round trips from a container: %v", rtts)
	resp, _ := lookupIn(t, a.ns, gw, "b", mdns.TypeAAAA)
	assert.Check(t, is.Equal(resp.Rcode, mdns.RcodeSuccess))
	assert.Check(t, is.Len(resp.Answer, 0))

	// another network: neither resolved nor reachable
	resp, _ = lookupIn(t, a.ns, gw, "c", mdns.TypeA)
	assert.Check(t, is.Len(resp.Answer, 0))
	assert.Check(t, resp.Rcode != mdns.RcodeSuccess, "c resolved from front: %v", resp)
	_, err = fetchIn(a.ns, net.JoinHostPort(esC.IPAddress.String(), "80"))
	assert.Check(t, err != nil, "front reached back")

	// a published port is reachable from another network through the
	// host (here: c's gateway), and by the container itself (hairpin)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	assert.NilError(t, err)
	pub := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = e.m.PublishPorts(ctx, b.id, esB.IPAddress, network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: fmt.Sprint(pub)}}}, false, nil)
	assert.NilError(t, err)
	got, err = reachIn(c.ns, net.JoinHostPort(esC.Gateway.String(), fmt.Sprint(pub)))
	assert.NilError(t, err, "published port from another network")
	assert.Check(t, is.Equal(got, "hello from b"))
	got, err = reachIn(b.ns, net.JoinHostPort(esB.Gateway.String(), fmt.Sprint(pub)))
	assert.NilError(t, err, "hairpin")
	assert.Check(t, is.Equal(got, "hello from b"))

	// connect c to front as well: eth1, reachable, resolvable
	esC2 := e.attach(t, c, "front", false)
	resp, _ = lookupIn(t, a.ns, gw, "c", mdns.TypeA)
	assert.Check(t, is.DeepEqual(aRecords(resp), []string{esC2.IPAddress.String()}))
	assert.NilError(t, inNS(c.ns, func() error { _, err := netlink.LinkByName("eth1"); return err }))
	got, err = reachIn(a.ns, net.JoinHostPort(esC2.IPAddress.String(), "80"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, "hello from c"))

	// twice is a conflict
	_, err = e.m.Attach(ctx, c.ns, AttachRequest{ContainerID: c.id, ContainerName: "c", Network: "front"})
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.Error(err, "endpoint with name c already exists in network front"))

	// disconnect: gone from DNS and unreachable
	assert.NilError(t, e.m.Detach(ctx, c.id, "front"))
	assert.NilError(t, e.m.Detach(ctx, c.id, "front")) // idempotent
	resp, _ = lookupIn(t, a.ns, gw, "c", mdns.TypeA)
	assert.Check(t, is.Len(resp.Answer, 0))
	_, err = fetchIn(a.ns, net.JoinHostPort(esC2.IPAddress.String(), "80"))
	assert.Check(t, err != nil)

	// network in use
	err = e.m.RemoveNetwork(ctx, "front")
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.ErrorContains(err, "error while removing network: network front id "+front.ID+" has active endpoints"))

	// dangling filter
	f := filters.New([2]string{"dangling", "true"})
	list, err := e.m.Networks(ctx, f)
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 0))

	// tear everything down: nothing left
	for _, x := range []*ctr{a, b, c} {
		assert.NilError(t, e.m.DeleteSandbox(ctx, x.id))
		assert.NilError(t, e.m.DeleteSandbox(ctx, x.id))
	}
	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Veths, 0))
	assert.Check(t, is.Len(inv.Netns, 0))
	assert.Check(t, is.Len(PortRules(inv.Rules), 0))
	assert.Check(t, is.Equal(inv.Endpoints, 0))
	assert.Check(t, is.Equal(inv.DNSRecords, 0))
	rep, err := e.m.PruneNetworks(ctx, filters.Args{})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(rep.NetworksDeleted, []string{"back", "front"}))
	assert.NilError(t, e.m.Close())
	_, err = netlink.LinkByName(e.slot.Bridge)
	assert.Check(t, err != nil, "default bridge left after an idle Close")
	inv, err = InventoryOf(ctx, e.cfg, []string{e.slot.Bridge})
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Rules, 0))
}

func TestPublishedPorts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.start(t, "web")
	es := e.attach(t, a, "bridge", true)
	serveIn(t, a.ns, 80, "hello published")

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	p80 := network.MustParsePort("80/tcp")
	p81 := network.MustParsePort("81/tcp")
	got, err := e.m.PublishPorts(ctx, a.id, es.IPAddress, network.PortMap{
		p80: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}},
	}, true, network.PortSet{p80: {}, p81: {}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got[p80][0].HostPort, fmt.Sprint(port)))
	assert.Check(t, is.Len(got[p81], 1)) // -P: ephemeral
	assert.Check(t, is.Equal(got[p81][0].HostIP, netip.MustParseAddr("0.0.0.0")))
	assert.Check(t, got[p81][0].HostPort != "")

	// from the host, on loopback (DNAT + route_localnet)
	// (the container's httpd may still be starting on a loaded machine:
	// wait for it, not for a guess of its speed)
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if body, err = fetch(fmt.Sprintf("127.0.0.1:%d", port)); err == nil || time.Now().After(deadline) {
			break
		}
	}
	assert.NilError(t, err, "the published port never answered within 30 s")
	assert.Check(t, is.Equal(body, "hello published"))

	// the same port for another container: dockerd's error
	b := e.start(t, "other")
	esB := e.attach(t, b, "bridge", true)
	_, err = e.m.PublishPorts(ctx, b.id, esB.IPAddress, network.PortMap{
		p80: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}},
	}, false, nil)
	assert.Check(t, errdefs.IsInternal(err))
	assert.Check(t, is.ErrorContains(err, fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port)))

	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(PortRules(inv.Rules), 2))
	assert.NilError(t, e.m.UnpublishPorts(ctx, a.id))
	_, err = fetch(fmt.Sprintf("127.0.0.1:%d", port))
	assert.Check(t, err != nil, "still published")
	inv, err = e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(PortRules(inv.Rules), 0))
	assert.Check(t, is.Len(inv.Ports, 0))
}

func TestRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "n"})
	assert.NilError(t, err)
	a, b, gone := e.start(t, "a"), e.start(t, "b"), e.start(t, "gone")
	e.attach(t, a, "n", true)
	esB := e.attach(t, b, "n", true)
	e.attach(t, gone, "n", true)
	serveIn(t, b.ns, 80, "b")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p80 := network.MustParsePort("80/tcp")
	_, err = e.m.PublishPorts(ctx, b.id, esB.IPAddress, network.PortMap{p80: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}}}, false, nil)
	assert.NilError(t, err)

	// the daemon stops with containers running: everything stays
	assert.NilError(t, e.m.Close())
	_, err = fetch(fmt.Sprintf("127.0.0.1:%d", port))
	assert.NilError(t, err, "the published port must survive the daemon")

	e.m = e.manager(t)
	for _, c := range []*ctr{a, b} {
		eps := map[string]*network.EndpointSettings{"none": {}} // as the runtime records --network none
		for k, v := range c.eps {
			eps[k] = v
		}
		assert.NilError(t, e.m.Restore(ctx, RestoreRequest{ContainerID: c.id, ContainerName: c.name, NSPath: c.ns, Endpoints: eps}))
	}
	assert.NilError(t, e.m.RestoreDone(ctx))

	in, err := e.m.InspectNetwork(ctx, "n")
	assert.NilError(t, err)
	assert.Check(t, is.Len(in.Containers, 2))
	resp, _ := lookupIn(t, a.ns, in.IPAM.Config[0].Gateway, "b", mdns.TypeA)
	assert.Check(t, is.DeepEqual(aRecords(resp), []string{esB.IPAddress.String()}))
	resp, _ = lookupIn(t, a.ns, in.IPAM.Config[0].Gateway, "gone", mdns.TypeA)
	assert.Check(t, is.Len(resp.Answer, 0))
	// the port is held again
	_, err = net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	assert.Check(t, err != nil, "host port not held after restore")
	// the container that was not restored lost its veth and sandbox
	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Veths, 2))
	assert.Check(t, is.Len(inv.Netns, 2))
	// and its address is free again: a static request for it works
	c := e.start(t, "c")
	_, err = e.m.Attach(ctx, c.ns, AttachRequest{ContainerID: c.id, ContainerName: "c", Network: "n", IPv4: gone.eps["n"].IPAddress})
	assert.NilError(t, err)
	for _, x := range []*ctr{a, b, c} {
		assert.NilError(t, e.m.DeleteSandbox(ctx, x.id))
	}
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "n", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix(e.slot.Block.Addr().String() + "/28")}}}})
	assert.Check(t, errdefs.IsPermissionDenied(err), "the slot's first /24 is the default bridge: %v", err)
	sub := netip.PrefixFrom(e.slot.Block.Addr().Next().Next(), 30) // x.x.x.2/30 is not masked
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "n", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub}}}})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	a := e.start(t, "a")
	defer e.m.DeleteSandbox(ctx, a.id)
	for _, tc := range []struct {
		req   AttachRequest
		check func(error) bool
		msg   string
	}{
		{AttachRequest{Network: "nope"}, errdefs.IsNotFound, "network nope not found"},
		{AttachRequest{Network: "host"}, errdefs.IsInvalidArgument, "container cannot be disconnected from host network or connected to host network"},
		{AttachRequest{Network: "bridge", IPv4: netip.MustParseAddr("10.0.0.5")}, errdefs.IsInvalidArgument, "user specified IP address is supported on user defined networks only"},
		{AttachRequest{Network: "bridge", Aliases: []string{"x"}}, errdefs.IsInvalidArgument, "network-scoped alias is supported only for containers in user defined networks"},
		{AttachRequest{Network: "bridge", MAC: "zz"}, errdefs.IsInvalidArgument, "invalid MAC address: zz"},
	} {
		tc.req.ContainerID, tc.req.ContainerName = a.id, "a"
		_, err := e.m.Attach(ctx, a.ns, tc.req)
		assert.Check(t, tc.check(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, tc.msg))
	}

	// static addresses on a user network
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "user"})
	assert.NilError(t, err)
	in, _ := e.m.InspectNetwork(ctx, "user")
	want := in.IPAM.Config[0].Subnet.Addr().Next().Next().Next().Next() // .4
	es, err := e.m.Attach(ctx, a.ns, AttachRequest{ContainerID: a.id, ContainerName: "a", Network: "user", IPv4: want, MAC: "02:00:00:00:00:01"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(es.IPAddress, want))
	assert.Check(t, is.Equal(es.MacAddress.String(), "02:00:00:00:00:01"))
	assert.Check(t, es.IPAMConfig != nil && es.IPAMConfig.IPv4Address == want)
	b := e.start(t, "b")
	defer e.m.DeleteSandbox(ctx, b.id)
	_, err = e.m.Attach(ctx, b.ns, AttachRequest{ContainerID: b.id, ContainerName: "b", Network: "user", IPv4: want})
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.Error(err, "Address already in use"))

	// berth's DNS server for a container: its primary network's gateway,
	// the default bridge's for anything else
	assert.Check(t, is.Equal(e.m.DNSServer("user"), in.IPAM.Config[0].Gateway))
	assert.Check(t, is.Equal(e.m.DNSServer(""), e.cfg.BIP.Addr()))
	assert.Check(t, is.Equal(e.m.DNSServer("none"), e.cfg.BIP.Addr()))
}

func TestSandboxLoOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.start(t, "none")
	var names []string
	assert.NilError(t, inNS(c.ns, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
			if l.Attrs().Name == "lo" && l.Attrs().Flags&net.FlagUp == 0 {
				return fmt.Errorf("lo is down")
			}
		}
		return err
	}))
	assert.Check(t, is.DeepEqual(names, []string{"lo"}))
	ns2, err := e.m.CreateSandbox(ctx, c.id)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ns2, c.ns))
	assert.NilError(t, e.m.DeleteSandbox(ctx, c.id))
	_, err = os.Stat(c.ns)
	assert.Check(t, os.IsNotExist(err))
	_, err = e.m.CreateSandbox(ctx, "../x")
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

// TestCyclesLeaveNothing is the library half of "100 create/start/rm
// cycles leave nothing": sandbox, attach, publish, then DeleteSandbox.
func TestCyclesLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "cycles"})
	assert.NilError(t, err)
	p80 := network.MustParsePort("80/tcp")
	const n = 100
	start := time.Now()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%064x", i+1)
		ns, err := e.m.CreateSandbox(ctx, id)
		assert.NilError(t, err)
		es, err := e.m.Attach(ctx, ns, AttachRequest{ContainerID: id, ContainerName: fmt.Sprintf("c%d", i), Network: "cycles", Primary: true, Aliases: []string{"svc"}})
		assert.NilError(t, err)
		_, err = e.m.PublishPorts(ctx, id, es.IPAddress, network.PortMap{p80: {{}}}, false, nil)
		assert.NilError(t, err)
		assert.NilError(t, e.m.DeleteSandbox(ctx, id))
	}
	t.Logf("%d cycles of sandbox+attach+publish+delete: %v each", n, time.Since(start)/n)
	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Veths, 0))
	assert.Check(t, is.Len(inv.Netns, 0))
	assert.Check(t, is.Len(PortRules(inv.Rules), 0))
	assert.Check(t, is.Len(inv.Ports, 0))
	assert.Check(t, is.Equal(inv.Endpoints, 0))
	assert.Check(t, is.Equal(inv.DNSRecords, 0))
	e.m.mu.Lock()
	for _, st := range e.m.networks {
		if st.sub != nil {
			assert.Check(t, is.Equal(st.sub.InUse(), 0), "addresses still allocated on %s", st.rec.Name)
		}
	}
	e.m.mu.Unlock()
}
