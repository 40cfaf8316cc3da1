package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	mdns "github.com/miekg/dns"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func ptrTo[T any](v T) *T { return &v }

// TestIPv6Create: the IPAM of IPv6 networks as dockerd gives it, and
// dockerd's errors for what it refuses, with nothing left behind.
func TestIPv6Create(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.slot.Subnet6(0)
	dual, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "dual", EnableIPv6: ptrTo(true),
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub, IPRange: netip.PrefixFrom(sub.Addr(), 96)}}}})
	assert.NilError(t, err)
	in, err := e.m.InspectNetwork(ctx, "dual")
	assert.NilError(t, err)
	assert.Check(t, in.EnableIPv4 && in.EnableIPv6)
	assert.Assert(t, is.Len(in.IPAM.Config, 2))
	assert.Check(t, in.IPAM.Config[0].Subnet.Addr().Is4())
	assert.Check(t, is.Equal(in.IPAM.Config[1].Subnet, sub))
	assert.Check(t, is.Equal(in.IPAM.Config[1].Gateway, sub.Addr().Next()))
	assert.Check(t, is.Equal(in.IPAM.Config[1].IPRange, netip.PrefixFrom(sub.Addr(), 96)))

	// the option says it too; a v6 config of a network without IPv6 is
	// ignored, as by dockerd
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "byopt", Options: map[string]string{optEnableIPv6: "true"}})
	assert.NilError(t, err)
	in, err = e.m.InspectNetwork(ctx, "byopt")
	assert.NilError(t, err)
	assert.Check(t, in.EnableIPv6)
	assert.Check(t, e.slot.Block6.Contains(in.IPAM.Config[1].Subnet.Addr()), "%v from the slot's pool", in.IPAM.Config[1].Subnet)
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "v4", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: e.slot.Subnet6(1)}}}})
	assert.NilError(t, err)
	in, err = e.m.InspectNetwork(ctx, "v4")
	assert.NilError(t, err)
	assert.Check(t, !in.EnableIPv6)
	assert.Check(t, is.Len(in.IPAM.Config, 1))

	only, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "only6", EnableIPv4: ptrTo(false), EnableIPv6: ptrTo(true)})
	assert.NilError(t, err)
	in, err = e.m.InspectNetwork(ctx, only.ID)
	assert.NilError(t, err)
	assert.Check(t, !in.EnableIPv4 && in.EnableIPv6)
	assert.Check(t, is.Len(in.IPAM.Config, 1))

	for _, tc := range []struct {
		name  string
		req   network.CreateRequest
		check func(error) bool
		msg   string
	}{
		{"overlap", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.PrefixFrom(sub.Addr(), 80)}}}},
			errdefs.IsPermissionDenied, "invalid pool request: Pool overlaps with other one on this address space"},
		{"link-local clash", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("fe80::/80")}}}},
			errdefs.IsInvalidArgument, "'fe80::/80' clashes with the Link-Local prefix 'fe80::/64'"},
		{"multicast", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("ff05::/64")}}}},
			errdefs.IsInvalidArgument, "multicast subnet 'ff05::/64' is not allowed"},
		{"host bits", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.PrefixFrom(e.slot.Subnet6(2).Addr().Next(), 64)}}}},
			errdefs.IsInvalidArgument, "it should be " + e.slot.Subnet6(2).String()},
		{"gateway outside", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: e.slot.Subnet6(2), Gateway: e.slot.Subnet6(3).Addr().Next()}}}},
			errdefs.IsInvalidArgument, "does not belong to subnet"},
		{"two IPv6 configs", network.CreateRequest{EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: e.slot.Subnet6(2)}, {Subnet: e.slot.Subnet6(3)}}}},
			errdefs.IsInvalidArgument, "one IPv6 subnet"},
		{"neither family", network.CreateRequest{EnableIPv4: ptrTo(false)}, errdefs.IsInvalidArgument, "IPv4 or IPv6 must be enabled"},
		{"bad option", network.CreateRequest{Options: map[string]string{optEnableIPv6: "maybe"}}, errdefs.IsInvalidArgument, `driver-opt "com.docker.network.enable_ipv6" is not a valid bool`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Name = "bad"
			for i := 0; i < 2; i++ {
				_, err := e.m.CreateNetwork(ctx, tc.req)
				assert.Check(t, tc.check(err), "%v", err)
				assert.Check(t, is.ErrorContains(err, tc.msg))
				_, err = e.m.Network(ctx, "bad")
				assert.Check(t, errdefs.IsNotFound(err), "created anyway")
			}
		})
	}
	for _, n := range []string{dual.ID, "byopt", "v4", "only6"} {
		assert.NilError(t, e.m.RemoveNetwork(ctx, n))
	}
	_, err = netlink.LinkByName("br-" + dual.ID[:12])
	assert.Check(t, err != nil, "bridge left")
}

// TestIPv6Endpoints: containers on a dual-stack and an IPv6-only network
// get IPv6 addresses (no DAD wait), default routes of both families, AAAA
// names through both kinds of DNS server, and give everything back.
func TestIPv6Endpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub, sub6 := e.slot.Subnet6(0), e.slot.Subnet6(1)
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "dual", EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub}}}})
	assert.NilError(t, err)
	_, err = e.m.CreateNetwork(ctx, network.CreateRequest{Name: "only6", EnableIPv4: ptrTo(false), EnableIPv6: ptrTo(true), IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub6}}}})
	assert.NilError(t, err)
	a, b := e.start(t, "a"), e.start(t, "b")
	esA := e.attach(t, a, "dual", true)
	esB := e.attach(t, b, "only6", true)
	assert.Check(t, esA.IPAddress.IsValid() && sub.Contains(esA.GlobalIPv6Address))
	assert.Check(t, is.Equal(esA.IPv6Gateway, sub.Addr().Next()))
	assert.Check(t, is.Equal(esA.GlobalIPv6PrefixLen, 64))
	assert.Check(t, !esB.IPAddress.IsValid() && !esB.Gateway.IsValid() && sub6.Contains(esB.GlobalIPv6Address))
	assert.Check(t, is.Equal(e.m.DNSServer("only6"), sub6.Addr().Next()))
	assert.Check(t, e.m.DNSServer("dual").Is4())

	// the address is usable at once, with the default route through the gateway
	assert.NilError(t, inNS(a.ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		ok := false
		for _, ad := range addrs {
			if ad.IP.Equal(esA.GlobalIPv6Address.AsSlice()) {
				ok = ad.Flags&0x40 == 0 // IFA_F_TENTATIVE
			}
		}
		if !ok {
			return fmt.Errorf("%s missing or tentative in %v", esA.GlobalIPv6Address, addrs)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "::/0") && r.Gw.Equal(esA.IPv6Gateway.AsSlice()) {
				return nil
			}
		}
		return fmt.Errorf("no IPv6 default route via %s in %v", esA.IPv6Gateway, routes)
	}))

	// b asks the IPv6-only network's server (on its IPv6 gateway) for a,
	// once a is connected there too
	esA2 := e.attach(t, a, "only6", false)
	resp := lookupIn6(t, b.ns, sub6.Addr().Next(), "a", mdns.TypeAAAA)
	assert.Check(t, is.DeepEqual(aaaaRecords(resp), []string{esA2.GlobalIPv6Address.String()}))
	resp = lookupIn6(t, b.ns, sub6.Addr().Next(), "a", mdns.TypeA)
	assert.Check(t, is.Equal(resp.Rcode, mdns.RcodeSuccess))
	assert.Check(t, is.Len(resp.Answer, 0), "A of an IPv6-only endpoint")

	serveIn6(t, b.ns, 8080, "hello over v6")
	got, err := reachIn6(a.ns, net.JoinHostPort(esB.GlobalIPv6Address.String(), "8080"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, "hello over v6"))

	assert.Check(t, is.Equal(e.m.AllocatedAddresses(), 4))
	for _, c := range []*ctr{a, b} {
		assert.NilError(t, e.m.DeleteSandbox(ctx, c.id))
	}
	e.m.bg.Wait()
	assert.Check(t, is.Equal(e.m.AllocatedAddresses(), 0))
}

func lookupIn6(t *testing.T, nsPath string, server netip.Addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	resp, _ := lookupIn(t, nsPath, server, name, qtype)
	return resp
}

func aaaaRecords(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*mdns.AAAA); ok {
			out = append(out, a.AAAA.String())
		}
	}
	return out
}

func serveIn6(t *testing.T, nsPath string, port int, msg string) {
	t.Helper()
	var l net.Listener
	assert.NilError(t, inNS(nsPath, func() (err error) {
		l, err = net.Listen("tcp6", fmt.Sprintf("[::]:%d", port))
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(msg))
			c.Close()
		}
	}()
}

func reachIn6(nsPath, addr string) (string, error) {
	var out string
	err := inNS(nsPath, func() (err error) {
		for i := 0; i < 25; i++ {
			var c net.Conn
			if c, err = net.DialTimeout("tcp6", addr, 200*time.Millisecond); err != nil {
				continue
			}
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			c.Close()
			out = string(buf[:n])
			return nil
		}
		return err
	})
	return out, err
}
