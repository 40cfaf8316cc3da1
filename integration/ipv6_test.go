package integration

// Issue 16, IPv6: dual-stack and IPv6-only networks, IPv6 published ports,
// AAAA answers with berth's scoping, compose enable_ipv6, the default
// bridge with --ipv6. Every IPv6 subnet is a ULA from the test's network
// slot (testenv.NetSlot.Block6), on bridges the test's daemon creates.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/network"
	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// endpoint6 is the IPv6 part of NetworkSettings.Networks[name].
type endpoint6 struct {
	IPAMConfig          *struct{ IPv4Address, IPv6Address string }
	IPAddress           string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	IPv6Gateway         string
	Gateway             string
}

func ctrNet6(t *testing.T, d *testenv.Daemon, ctr, netName string) endpoint6 {
	t.Helper()
	var eps map[string]endpoint6
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "inspect", "-f", "{{json .NetworkSettings.Networks}}", ctr)), &eps))
	ep, ok := eps[netName]
	assert.Assert(t, ok, "%s is not on %s", ctr, netName)
	return ep
}

// nslookupType is every address busybox nslookup prints for a query of
// one type, sorted.
func nslookupType(t *testing.T, d *testenv.Daemon, ctr, qtype, name string) []string {
	t.Helper()
	r := d.Docker("exec", ctr, "nslookup", "-type="+qtype, name)
	var addrs []string
	answers := false
	for _, line := range strings.Split(r.Stdout(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Name:") {
			answers = true
			continue
		}
		if a, ok := strings.CutPrefix(line, "Address:"); ok && answers {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

// hostPortFor is the host port `docker port` shows for a binding on hostIP.
func hostPortFor(t *testing.T, d *testenv.Daemon, ctr, port, hostIP string) int {
	t.Helper()
	out := d.DockerOK(t, "port", ctr, port)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
		if err == nil && ap.Addr().String() == hostIP {
			return int(ap.Port())
		}
	}
	t.Fatalf("%s: no binding of %s on %s in %q", ctr, port, hostIP, out)
	return 0
}

// TestIPv6DualStack is the "done when": on a dual-stack network two
// containers ping each other by name over IPv6, a port published on [::1]
// answers from the host, the IPv6 addresses show in inspect, AAAA and A
// answer their own families, and ip6tables isolates IPv6 networks.
func TestIPv6DualStack(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	sub := d.Net.Subnet6(0)
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", sub.String(), "dual")
	n := inspectNet(t, d, "dual")
	assert.Check(t, n.EnableIPv4 && n.EnableIPv6)
	assert.Assert(t, is.Len(n.IPAM.Config, 2))
	assert.Check(t, d.Net.Block.Contains(netip.MustParsePrefix(n.IPAM.Config[0].Subnet).Addr()), "IPv4 subnet from the pool: %+v", n.IPAM.Config)
	assert.Check(t, is.Equal(n.IPAM.Config[1].Subnet, sub.String()))
	gw6 := sub.Addr().Next()
	assert.Check(t, is.Equal(n.IPAM.Config[1].Gateway, gw6.String()))

	d.DockerOK(t, "run", "-d", "--name", "v6a", "--network", "dual", "busybox", "sleep", "300")
	d.DockerOK(t, "run", "-d", "--name", "v6b", "--network", "dual", "-p", "[::1]::80", "-p", "80", "busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/var/www")
	a, b := ctrNet6(t, d, "v6a", "dual"), ctrNet6(t, d, "v6b", "dual")
	for _, ep := range []endpoint6{a, b} {
		ip := netip.MustParseAddr(ep.GlobalIPv6Address)
		assert.Check(t, sub.Contains(ip), "%s outside %s", ip, sub)
		assert.Check(t, is.Equal(ep.GlobalIPv6PrefixLen, 64))
		assert.Check(t, is.Equal(ep.IPv6Gateway, gw6.String()))
		assert.Check(t, ep.IPAddress != "" && ep.Gateway != "", "dual stack: %+v", ep)
	}
	// docker inspect's network view lists both addresses
	var nets []struct {
		Containers map[string]struct{ IPv4Address, IPv6Address string }
	}
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "network", "inspect", "dual")), &nets))
	found := false
	for _, c := range nets[0].Containers {
		if c.IPv6Address == b.GlobalIPv6Address+"/64" {
			found = c.IPv4Address == b.IPAddress+"/"+strconv.Itoa(netip.MustParsePrefix(n.IPAM.Config[0].Subnet).Bits())
		}
	}
	assert.Check(t, found, "network inspect: %+v", nets)

	// by name, over IPv6, both ways, more than once
	for i := 0; i < 2; i++ {
		out := inCtrOK(t, d, "v6a", retried("ping -6 -c 1 -W 2 v6b"))
		assert.Check(t, is.Contains(out, b.GlobalIPv6Address))
		out = inCtrOK(t, d, "v6b", retried("ping -6 -c 1 -W 2 v6a"))
		assert.Check(t, is.Contains(out, a.GlobalIPv6Address))
	}
	assert.Check(t, is.DeepEqual(nslookupType(t, d, "v6a", "AAAA", "v6b"), []string{b.GlobalIPv6Address}))
	assert.Check(t, is.DeepEqual(nslookupType(t, d, "v6a", "A", "v6b"), []string{b.IPAddress}))
	out := inCtrOK(t, d, "v6a", retried(wgetOnce("http://["+b.GlobalIPv6Address+"]/")))
	assert.Check(t, is.Contains(out, httpdBody))
	// its own IPv6 address in /etc/hosts
	hosts := inCtrOK(t, d, "v6b", "cat /etc/hosts")
	assert.Check(t, is.Contains(hosts, b.GlobalIPv6Address+"\t"))

	// published on [::1]: answers from the host (forwarded in user space)
	p := hostPortFor(t, d, "v6b", "80/tcp", "::1")
	assert.Check(t, is.Contains(netGet(t, "http://[::1]:"+strconv.Itoa(p)+"/"), httpdBody))
	// published on every address: 0.0.0.0 and :: with one port, reached on
	// IPv4 loopback, IPv6 loopback and an IPv6 address of the host (DNAT)
	any4 := hostPortFor(t, d, "v6b", "80/tcp", "0.0.0.0")
	assert.Check(t, is.Equal(hostPortFor(t, d, "v6b", "80/tcp", "::"), any4))
	for _, host := range []string{"127.0.0.1", "[::1]", "[" + gw6.String() + "]"} {
		assert.Check(t, is.Contains(netGet(t, "http://"+host+":"+strconv.Itoa(any4)+"/"), httpdBody), host)
	}

	// IPv6 rules in ip6tables: NAT out of the subnet, the DNAT of ::
	inv := inventory(t, d, "dual")
	rules := strings.Join(inv.Rules, "\n")
	assert.Check(t, is.Contains(rules, "ip6 nat: -A BERTH-POST-"+d.Net.Bridge+" -s "+sub.String()+" ! -o br-"+n.Id[:12]+" -j MASQUERADE"))
	assert.Check(t, is.Contains(rules, "--to-destination ["+b.GlobalIPv6Address+"]:80"))

	// another IPv6 network is isolated from this one, over IPv6 too
	other := d.Net.Subnet6(1)
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", other.String(), "dual2")
	d.DockerOK(t, "run", "-d", "--name", "v6c", "--network", "dual2", "busybox", "sleep", "300")
	c := ctrNet6(t, d, "v6c", "dual2")
	inCtrOK(t, d, "v6c", retried("ping -6 -c 1 -W 2 "+other.Addr().Next().String())) // its own gateway answers
	r := inCtr(d, "v6a", "ping -6 -c 1 -W 1 "+c.GlobalIPv6Address)
	assert.Check(t, r.ExitCode != 0, "dual reached dual2 over IPv6: %s", r.Combined())

	// the second time around: gone and back
	d.DockerOK(t, "rm", "-f", "v6a", "v6b", "v6c")
	d.DockerOK(t, "network", "rm", "dual", "dual2")
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", sub.String(), "dual")
	d.DockerOK(t, "run", "-d", "--name", "v6a", "--network", "dual", "busybox", "sleep", "300")
	d.DockerOK(t, "run", "-d", "--name", "v6b", "--network", "dual", "busybox", "sleep", "300")
	inCtrOK(t, d, "v6a", retried("ping -6 -c 1 -W 2 v6b"))
	d.DockerOK(t, "rm", "-f", "v6a", "v6b")
	d.DockerOK(t, "network", "rm", "dual")

	// nothing of it stays in ip6tables once the daemon stops idle
	d.Stop(t)
	inv, err := network.InventoryOf(context.Background(), network.Config{Bridge: d.Net.Bridge, ExecRoot: d.ExecRoot}, []string{d.Net.Bridge})
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Rules, 0), "%v", inv.Rules)
}

// TestIPv6Only: a network without IPv4. Containers have IPv6 addresses
// only, resolv.conf names the IPv6 gateway, where berth's DNS server
// answers them (by name, over IPv6) and refuses anyone else.
func TestIPv6Only(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	sub := d.Net.Subnet6(3)
	d.DockerOK(t, "network", "create", "--ipv6", "--ipv4=false", "--subnet", sub.String(), "only6")
	n := inspectNet(t, d, "only6")
	assert.Check(t, !n.EnableIPv4 && n.EnableIPv6)
	assert.Assert(t, is.Len(n.IPAM.Config, 1))
	assert.Check(t, is.Equal(n.IPAM.Config[0].Subnet, sub.String()))

	d.DockerOK(t, "run", "-d", "--name", "v6x", "--network", "only6", "busybox", "sleep", "300")
	d.DockerOK(t, "run", "-d", "--name", "v6y", "--network", "only6", "-p", "[::1]::80", "busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/var/www")
	x, y := ctrNet6(t, d, "v6x", "only6"), ctrNet6(t, d, "v6y", "only6")
	assert.Check(t, is.Equal(x.IPAddress, ""))
	assert.Check(t, is.Equal(x.Gateway, ""))
	assert.Check(t, sub.Contains(netip.MustParseAddr(x.GlobalIPv6Address)))
	gw6 := sub.Addr().Next().String()
	assert.Check(t, is.Contains(inCtrOK(t, d, "v6x", "cat /etc/resolv.conf"), "nameserver "+gw6+"\n"))
	assert.Check(t, !strings.Contains(inCtrOK(t, d, "v6x", "ip -4 addr show eth0"), "inet "), "an IPv4 address on an IPv6-only network")

	for i := 0; i < 2; i++ {
		out := inCtrOK(t, d, "v6x", retried("ping -c 1 -W 2 v6y"))
		assert.Check(t, is.Contains(out, y.GlobalIPv6Address))
	}
	assert.Check(t, is.DeepEqual(nslookupType(t, d, "v6x", "AAAA", "v6y"), []string{y.GlobalIPv6Address}))
	assert.Check(t, is.Len(nslookupType(t, d, "v6x", "A", "v6y"), 0))
	p := hostPortFor(t, d, "v6y", "80/tcp", "::1")
	assert.Check(t, is.Contains(netGet(t, "http://[::1]:"+strconv.Itoa(p)+"/"), httpdBody))

	// the host is not a container of the network: REFUSED on the IPv6
	// gateway, as on an IPv4 one
	c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("v6y.", mdns.TypeAAAA)
	resp, _, err := c.Exchange(m, net.JoinHostPort(gw6, "53"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resp.Rcode, mdns.RcodeRefused))

	// an IPv4 address asked on a network without IPv4
	dockerFails(t, d, "does not belong", "run", "--rm", "--network", "only6", "--ip", "10.99.0.5", "busybox", "true")
}

// TestIPv6BadInput: an IPv6 subnet that overlaps another network's gets
// dockerd's error and nothing is created, every time; so do link-local
// clashes and malformed subnets.
func TestIPv6BadInput(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	sub := d.Net.Subnet6(4)
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", sub.String(), "first")
	inside := netip.PrefixFrom(sub.Addr(), 80)
	before := d.DockerOK(t, "network", "ls", "-q")
	for i := 0; i < 3; i++ {
		for _, tc := range []struct{ msg, subnet string }{
			{"Pool overlaps with other one on this address space", sub.String()},
			{"Pool overlaps with other one on this address space", inside.String()},
			{"clashes with the Link-Local prefix 'fe80::/64'", "fe80::/80"},
			{"multicast subnet", "ff05::/64"},
			{"it should be", netip.PrefixFrom(sub.Addr().Next(), 64).String()},
		} {
			dockerFails(t, d, tc.msg, "network", "create", "--ipv6", "--subnet", tc.subnet, "second")
		}
		dockerFails(t, d, "IPv4 or IPv6 must be enabled", "network", "create", "--ipv4=false", "second")
	}
	assert.Check(t, is.Equal(d.DockerOK(t, "network", "ls", "-q"), before))
	assert.Check(t, is.DeepEqual(bridgesIn(t, d.Net.Block6), []string{"br-" + inspectNet(t, d, "first").Id[:12]}), "a bridge was left behind")

	// a static IPv6 address outside the subnet, or on the default bridge
	d.LoadBusybox(t)
	dockerFails(t, d, "does not belong", "run", "--rm", "--network", "first", "--ip6", d.Net.Subnet6(5).Addr().Next().String(), "busybox", "true")
	dockerFails(t, d, "user specified IP address is supported on user defined networks only", "run", "--rm", "--ip6", sub.Addr().Next().Next().String(), "busybox", "true")
	d.DockerOK(t, "network", "rm", "first")
}

// bridgesIn are the bridge devices with an address in block.
func bridgesIn(t *testing.T, block netip.Prefix) []string {
	t.Helper()
	links, err := netlink.LinkList()
	assert.NilError(t, err)
	var out []string
	for _, l := range links {
		if l.Type() != "bridge" {
			continue
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V6)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && block.Contains(ip) {
				out = append(out, l.Attrs().Name)
				break
			}
		}
	}
	return out
}

// TestIPv6Pools: networks without a subnet get /64s from the daemon's IPv6
// pool, distinct, kept across a restart; the default bridge gets IPv6 with
// --ipv6 (from the pool, then from --fixed-cidr-v6), and its containers
// show the address at the top of NetworkSettings for old API versions.
func TestIPv6Pools(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, "--ipv6")
	d.LoadBusybox(t)
	pool := netip.PrefixFrom(d.Net.Block6.Addr(), 57)
	d.DockerOK(t, "network", "create", "--ipv6", "p1")
	d.DockerOK(t, "network", "create", "--ipv6", "p2")
	subnet6 := func(name string) netip.Prefix {
		for _, c := range inspectNet(t, d, name).IPAM.Config {
			if p := netip.MustParsePrefix(c.Subnet); p.Addr().Is6() {
				return p
			}
		}
		t.Fatalf("%s has no IPv6 subnet", name)
		return netip.Prefix{}
	}
	br, s1, s2 := subnet6("bridge"), subnet6("p1"), subnet6("p2")
	for _, s := range []netip.Prefix{br, s1, s2} {
		assert.Check(t, pool.Contains(s.Addr()) && s.Bits() == 64, "%s not a /64 of the pool %s", s, pool)
	}
	assert.Check(t, br != s1 && s1 != s2 && br != s2, "%s %s %s", br, s1, s2)

	d.DockerOK(t, "run", "-d", "--name", "old", "busybox", "sleep", "300")
	ep := ctrNet6(t, d, "old", "bridge")
	assert.Check(t, br.Contains(netip.MustParseAddr(ep.GlobalIPv6Address)))
	// the CLI negotiates the newest API, where the top-level fields are
	// gone; API 1.43 has them from the default bridge's endpoint
	legacy := getJSON(t, d, "/v1.43/containers/old/json")
	assert.Check(t, is.Equal(legacy["NetworkSettings"].(map[string]any)["GlobalIPv6Address"], ep.GlobalIPv6Address))
	d.DockerOK(t, "rm", "-f", "old")

	d.Restart(t, syscall.SIGTERM)
	assert.Check(t, is.Equal(subnet6("bridge"), br), "the default bridge keeps its pool subnet")
	assert.Check(t, is.Equal(subnet6("p1"), s1))
	d.DockerOK(t, "network", "create", "--ipv6", "p3")
	assert.Check(t, !slices.Contains([]netip.Prefix{br, s1, s2}, subnet6("p3")))

	fixed := d.Net.Subnet6(6)
	d.Args = append(d.Args, "--fixed-cidr-v6", fixed.String())
	d.Restart(t, syscall.SIGTERM)
	assert.Check(t, is.Equal(subnet6("bridge"), fixed))
	d.DockerOK(t, "run", "-d", "--name", "fixed", "busybox", "sleep", "300")
	assert.Check(t, fixed.Contains(netip.MustParseAddr(ctrNet6(t, d, "fixed", "bridge").GlobalIPv6Address)))
	d.DockerOK(t, "rm", "-f", "fixed")
}

// getJSON GETs an API path from the daemon's socket.
func getJSON(t *testing.T, d *testenv.Daemon, path string) map[string]any {
	t.Helper()
	out, err := apiGetRaw(d, path)
	assert.NilError(t, err, out)
	var v map[string]any
	assert.NilError(t, json.Unmarshal([]byte(out), &v), out)
	return v
}

func apiGetRaw(d *testenv.Daemon, path string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Sock)
	}}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://berth" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestIPv6Compose: compose's enable_ipv6 and ipam subnets make an IPv6
// network; AAAA answers follow berth's deployment scoping, as A does: on
// a network two projects share, each web gets its own db's IPv6 address.
func TestIPv6Compose(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	shared := d.Net.Subnet6(7)
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", shared.String(), "shared6")
	t.Cleanup(func() { d.Docker("network", "rm", "shared6") })
	dir := t.TempDir()
	write := func(project, body string) []string {
		p := filepath.Join(dir, project+".yaml")
		assert.NilError(t, os.WriteFile(p, []byte(body), 0o644))
		return []string{"-f", p}
	}
	front := d.Net.Subnet6(8)
	shop := write("shop", `name: shop
services:
  db:
    image: busybox
    command: ["sleep", "300"]
    networks: [shared6, front]
  web:
    image: busybox
    command: ["sleep", "300"]
    networks: [shared6, front]
networks:
  shared6:
    external: true
  front:
    enable_ipv6: true
    ipam:
      config:
        - subnet: `+front.String()+`
`)
	blog := write("blog", `name: blog
services:
  db:
    image: busybox
    command: ["sleep", "300"]
    networks: [shared6]
  web:
    image: busybox
    command: ["sleep", "300"]
    networks: [shared6]
networks:
  shared6:
    external: true
`)
	d.ComposeOK(t, append(shop, "up", "-d")...)
	d.ComposeOK(t, append(blog, "up", "-d")...)
	n := inspectNet(t, d, "shop_front")
	assert.Check(t, n.EnableIPv6)
	var subnets []string
	for _, c := range n.IPAM.Config {
		subnets = append(subnets, c.Subnet)
	}
	assert.Check(t, slices.Contains(subnets, front.String()), "%v", subnets)

	v6s := func(ctr string) []string {
		var out []string
		for _, nn := range []string{"shared6", "shop_front"} {
			var eps map[string]endpoint6
			assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "inspect", "-f", "{{json .NetworkSettings.Networks}}", ctr)), &eps))
			if ep, ok := eps[nn]; ok && ep.GlobalIPv6Address != "" {
				out = append(out, ep.GlobalIPv6Address)
			}
		}
		slices.Sort(out)
		return out
	}
	shopDB, blogDB := v6s("shop-db-1"), v6s("blog-db-1")
	assert.Assert(t, is.Len(shopDB, 2))
	assert.Assert(t, is.Len(blogDB, 1))
	for i := 0; i < 5; i++ {
		got := nslookupType(t, d, "shop-web-1", "AAAA", "db")
		assert.Assert(t, len(got) > 0, "shop's web found no AAAA for db")
		for _, ip := range got {
			assert.Assert(t, slices.Contains(shopDB, ip), "try %d: shop-web-1 got %v for db, want only %v", i, got, shopDB)
		}
		assert.Check(t, is.DeepEqual(nslookupType(t, d, "blog-web-1", "AAAA", "db"), blogDB), "try %d", i)
	}
	assert.Check(t, is.DeepEqual(nslookupType(t, d, "shop-web-1", "AAAA", "db.blog.berth.internal"), blogDB))
	// by name over IPv6 through the compose network
	out := inCtrOK(t, d, "shop-web-1", retried("ping -6 -c 1 -W 2 db"))
	assert.Check(t, slices.ContainsFunc(shopDB, func(ip string) bool { return strings.Contains(out, ip) }), out)

	d.ComposeOK(t, append(blog, "down")...)
	d.ComposeOK(t, append(shop, "down")...)
	assert.Check(t, is.Equal(leftovers(t, d, "shop")+leftovers(t, d, "blog"), ""))

	// berth's own deploy of the same file makes the same IPv6 network
	r := d.Berth(t, "compose", "up", "-f", shop[1])
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	n = inspectNet(t, d, "shop_front")
	assert.Check(t, n.EnableIPv6)
	assert.Check(t, slices.ContainsFunc(n.IPAM.Config, func(c struct{ Subnet, Gateway, IPRange string }) bool { return c.Subnet == front.String() }), "%+v", n.IPAM.Config)
	assert.Check(t, sub6Contains(front, ctrNet6(t, d, "shop-web-1", "shop_front").GlobalIPv6Address))
	r = d.Berth(t, "compose", "down", "-p", "shop", "-t", "0")
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Equal(leftovers(t, d, "shop"), ""))
}

func sub6Contains(p netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}

// TestIPv6DockerPy: docker-py's own IPv6 network tests
// (test_create_network_ipv6_enabled, test_create_with_ipv6_address,
// test_connect_with_ipv6_address), on a subnet of the test's slot.
func TestIPv6DockerPy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	sub := d.Net.Subnet6(9)
	base := strings.TrimSuffix(sub.Addr().String(), "::")
	script := `
import sys, docker
from docker.types import IPAMConfig, IPAMPool
base = sys.argv[1]
c = docker.from_env(version="auto").api
ipam = IPAMConfig(driver="default", pool_configs=[IPAMPool(subnet=base + "::/64", iprange=base + "::0/96", gateway=base + "::ffff")])

# test_create_network_ipv6_enabled
net = c.create_network("py6", enable_ipv6=True, ipam=ipam)
assert c.inspect_network(net["Id"])["EnableIPv6"] is True

# test_create_with_ipv6_address
ctr = c.create_container(image="busybox", command="top",
    host_config=c.create_host_config(network_mode="py6"),
    networking_config=c.create_networking_config({"py6": c.create_endpoint_config(ipv6_address=base + "::f00d")}))
c.start(ctr)
ns = c.inspect_container(ctr)["NetworkSettings"]
assert ns["Networks"]["py6"]["IPAMConfig"]["IPv6Address"] == base + "::f00d", ns
assert ns["Networks"]["py6"]["GlobalIPv6Address"] == base + "::f00d", ns
c.remove_container(ctr, force=True)

# test_connect_with_ipv6_address
ctr = c.create_container(image="busybox", command="top", host_config=c.create_host_config(network_mode="py6"))
c.start(ctr)
first = c.inspect_container(ctr)["NetworkSettings"]["Networks"]["py6"]["GlobalIPv6Address"]
assert first.startswith(base + "::"), first
c.disconnect_container_from_network(ctr, "py6")
c.connect_container_to_network(ctr, "py6", ipv6_address=base + "::f00d")
ep = c.inspect_container(ctr)["NetworkSettings"]["Networks"]["py6"]
assert ep["IPAMConfig"]["IPv6Address"] == base + "::f00d", ep
assert ep["GlobalIPv6Address"] == base + "::f00d", ep
assert ep["IPv6Gateway"] == base + "::ffff", ep
c.remove_container(ctr, force=True)
c.remove_network("py6")
print("ok")
`
	assert.Check(t, is.Equal(d.DockerPy(t, script, base), "ok"))
}

// TestIPv6SurvivesRestart: a container on a dual-stack network keeps its
// IPv6 address, AAAA name and published ports across a daemon kill: the
// DNAT of :: keeps working while berthd is down, the user-space [::1]
// forwarding comes back with the daemon.
func TestIPv6SurvivesRestart(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	sub := d.Net.Subnet6(10)
	gw6 := sub.Addr().Next()
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", sub.String(), "keep6")
	d.DockerOK(t, "run", "-d", "--name", "web6", "--network", "keep6", "-p", "[::1]::80", "-p", "80", "busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/var/www")
	d.DockerOK(t, "run", "-d", "--name", "cli6", "--network", "keep6", "busybox", "sleep", "300")
	web := ctrNet6(t, d, "web6", "keep6")
	lo, any6 := hostPortFor(t, d, "web6", "80/tcp", "::1"), hostPortFor(t, d, "web6", "80/tcp", "::")
	assert.Check(t, is.Contains(netGet(t, "http://[::1]:"+strconv.Itoa(lo)+"/"), httpdBody))

	d.Kill(t)
	// DNAT rules outlive the daemon
	assert.Check(t, is.Contains(netGet(t, "http://["+gw6.String()+"]:"+strconv.Itoa(any6)+"/"), httpdBody))
	d.Start(t)
	assert.Check(t, is.Equal(ctrNet6(t, d, "web6", "keep6").GlobalIPv6Address, web.GlobalIPv6Address))
	assert.Check(t, is.Contains(netGet(t, "http://[::1]:"+strconv.Itoa(lo)+"/"), httpdBody))
	assert.Check(t, is.Contains(netGet(t, "http://[::1]:"+strconv.Itoa(any6)+"/"), httpdBody))
	assert.Check(t, is.DeepEqual(nslookupType(t, d, "cli6", "AAAA", "web6"), []string{web.GlobalIPv6Address}))
	// a new container does not get the restored one's address
	d.DockerOK(t, "run", "-d", "--name", "new6", "--network", "keep6", "busybox", "sleep", "300")
	assert.Check(t, ctrNet6(t, d, "new6", "keep6").GlobalIPv6Address != web.GlobalIPv6Address)
}
