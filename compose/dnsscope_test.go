package compose

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/berthd/berth/network/dns"
	mdns "github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// recorder is a dns.ResponseWriter that keeps the reply.
type recorder struct{ msg *mdns.Msg }

func (r *recorder) LocalAddr() net.Addr        { return &net.UDPAddr{} }
func (r *recorder) RemoteAddr() net.Addr       { return &net.UDPAddr{} }
func (r *recorder) WriteMsg(m *mdns.Msg) error { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// nextHandler marks that the query was passed on.
type nextHandler struct{ called bool }

func (n *nextHandler) Name() string { return "next" }
func (n *nextHandler) ServeDNS(context.Context, mdns.ResponseWriter, *mdns.Msg) (int, error) {
	n.called = true
	return mdns.RcodeServerFailure, nil
}

func TestDNSPlugin(t *testing.T) {
	table := dns.NewTable()
	ep := func(id, name, netID, ip string, l map[string]string, aliases ...string) dns.Endpoint {
		return dns.Endpoint{ContainerID: id, Name: name, NetworkID: netID, IP: netip.MustParseAddr(ip), Labels: l, Aliases: aliases}
	}
	shopWeb := ep("sweb", "shop-web-1", "shared", "10.9.0.3", labels("shop", "web", 1), "web")
	table.Add(shopWeb)
	table.Add(ep("sdb", "named-db", "shared", "10.9.0.2", labels("shop", "db", 1), "db"))
	table.Add(ep("bdb", "blog-db-1", "shared", "10.9.0.4", labels("blog", "db", 1), "db"))

	tests := []struct {
		name   string
		q      string
		qtype  uint16
		rcode  int
		answer []string
		next   bool
	}{
		{name: "bare service is scoped", q: "db.", qtype: mdns.TypeA, rcode: mdns.RcodeSuccess, answer: []string{"10.9.0.2"}},
		{name: "fqdn of the other deployment", q: "db.blog.berth.internal.", qtype: mdns.TypeA, rcode: mdns.RcodeSuccess, answer: []string{"10.9.0.4"}},
		{name: "AAAA of a known name: empty NOERROR", q: "db.", qtype: mdns.TypeAAAA, rcode: mdns.RcodeSuccess},
		{name: "own stopped service: NXDOMAIN", q: "mail.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError},
		{name: "unknown name goes on", q: "example.com.", qtype: mdns.TypeA, next: true},
		{name: "other types go on", q: "db.", qtype: mdns.TypeMX, next: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := &nextHandler{}
			h := DNSPlugin(services{"shop/mail": true})(next)
			asker := shopWeb
			ctx := dns.WithRequest(context.Background(), &dns.Request{Network: "shared", Asker: &asker, Zone: "berth.internal", Records: table})
			m := new(mdns.Msg)
			m.SetQuestion(tc.q, tc.qtype)
			w := &recorder{}
			rcode, err := h.ServeDNS(ctx, w, m)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(next.called, tc.next))
			if tc.next {
				return
			}
			assert.Check(t, is.Equal(rcode, tc.rcode))
			assert.Assert(t, w.msg != nil)
			assert.Check(t, is.Equal(w.msg.Rcode, tc.rcode))
			assert.Check(t, w.msg.Authoritative)
			var got []string
			for _, rr := range w.msg.Answer {
				got = append(got, rr.(*mdns.A).A.String())
			}
			assert.Check(t, is.DeepEqual(got, tc.answer))
		})
	}
}

// TestDNSPluginAAAA: AAAA answers follow the same scoping as A: a shop
// container asking for db gets shop's db's IPv6 address, never blog's.
func TestDNSPluginAAAA(t *testing.T) {
	table := dns.NewTable()
	ep := func(id, name, ip4, ip6 string, l map[string]string, aliases ...string) dns.Endpoint {
		e := dns.Endpoint{ContainerID: id, Name: name, NetworkID: "shared", Labels: l, Aliases: aliases}
		if ip4 != "" {
			e.IP = netip.MustParseAddr(ip4)
		}
		if ip6 != "" {
			e.IPv6 = netip.MustParseAddr(ip6)
		}
		return e
	}
	shopWeb := ep("sweb", "shop-web-1", "10.9.0.3", "fd00:9::3", labels("shop", "web", 1), "web")
	table.Add(shopWeb)
	table.Add(ep("sdb", "shop-db-1", "10.9.0.2", "fd00:9::2", labels("shop", "db", 1), "db"))
	table.Add(ep("bdb", "blog-db-1", "10.9.0.4", "fd00:9::4", labels("blog", "db", 1), "db"))
	table.Add(ep("scache", "shop-cache-1", "", "fd00:9::5", labels("shop", "cache", 1), "cache"))
	for _, tc := range []struct {
		q     string
		qtype uint16
		want  []string
	}{
		{"db.", mdns.TypeAAAA, []string{"fd00:9::2"}},
		{"db.", mdns.TypeA, []string{"10.9.0.2"}},
		{"db.blog.berth.internal.", mdns.TypeAAAA, []string{"fd00:9::4"}},
		{"1.db.shop.berth.internal.", mdns.TypeAAAA, []string{"fd00:9::2"}},
		{"cache.", mdns.TypeA, nil}, // IPv6 only: NODATA, not NXDOMAIN
		{"cache.", mdns.TypeAAAA, []string{"fd00:9::5"}},
	} {
		t.Run(mdns.TypeToString[tc.qtype]+" "+tc.q, func(t *testing.T) {
			next := &nextHandler{}
			h := DNSPlugin(services{})(next)
			asker := shopWeb
			ctx := dns.WithRequest(context.Background(), &dns.Request{Network: "shared", Asker: &asker, Zone: "berth.internal", Records: table})
			m := new(mdns.Msg)
			m.SetQuestion(tc.q, tc.qtype)
			w := &recorder{}
			_, err := h.ServeDNS(ctx, w, m)
			assert.NilError(t, err)
			assert.Assert(t, !next.called && w.msg != nil)
			assert.Check(t, is.Equal(w.msg.Rcode, mdns.RcodeSuccess))
			var got []string
			for _, rr := range w.msg.Answer {
				switch v := rr.(type) {
				case *mdns.A:
					got = append(got, v.A.String())
				case *mdns.AAAA:
					got = append(got, v.AAAA.String())
				}
			}
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}

// The plugin sits in front of every A query. It builds its records once per
// change of the endpoints, not per query: a query costs the same
// allocations with 10 containers as with 1000, and a change is seen at once.
func TestDNSPluginWorkPerQuery(t *testing.T) {
	tableOf := func(n int) *dns.Table {
		tbl := dns.NewTable()
		for i := range n {
			tbl.Add(dns.Endpoint{ContainerID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("s%d", i+1), NetworkID: "scale",
				IP: netip.AddrFrom4([4]byte{10, 222, byte((i + 2) >> 8), byte(i + 2)}), Labels: map[string]string{}})
		}
		return tbl
	}
	query := func(h dns.Handler, tbl *dns.Table, name string) *mdns.Msg {
		asker, _ := tbl.ByIP("scale", netip.MustParseAddr("10.222.0.2"))
		ctx := dns.WithRequest(context.Background(), &dns.Request{Network: "scale", Asker: &asker, Zone: "berth.internal", Records: tbl})
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		w := &recorder{}
		_, err := h.ServeDNS(ctx, w, m)
		assert.NilError(t, err)
		return w.msg
	}
	allocs := func(n int) float64 {
		tbl := tableOf(n)
		h := DNSPlugin(services{})(dns.Chain(dns.Names(), dns.Zone()))
		return testing.AllocsPerRun(50, func() {
			if m := query(h, tbl, "s2.berth.internal."); m == nil || len(m.Answer) != 1 {
				t.Fatalf("no answer with %d containers: %v", n, m)
			}
		})
	}
	a10, a1000 := allocs(10), allocs(1000)
	assert.Check(t, a1000 <= a10, "a query allocates %v times with 10 containers and %v with 1000", a10, a1000)

	tbl := tableOf(3)
	h := DNSPlugin(services{})(dns.Chain(dns.Names(), dns.Zone()))
	assert.Check(t, is.Len(query(h, tbl, "late.berth.internal.").Answer, 0))
	tbl.Add(dns.Endpoint{ContainerID: "late", Name: "late", NetworkID: "scale", IP: netip.MustParseAddr("10.222.9.9")})
	m := query(h, tbl, "late.berth.internal.")
	assert.Assert(t, is.Len(m.Answer, 1), "an endpoint added after a query is answered")
	assert.Check(t, is.Equal(m.Answer[0].(*mdns.A).A.String(), "10.222.9.9"))
}
