package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// recorder is a dns.ResponseWriter that keeps the reply.
type recorder struct {
	msg    *dns.Msg
	remote net.Addr
}

func (r *recorder) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr {
	if r.remote != nil {
		return r.remote
	}
	return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 40000}
}
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}
func (r *recorder) Network() string             { return "udp" }

var (
	ip = netip.MustParseAddr
	// net1: web (alias www), db1 and db2 (alias db); net2: other (alias db), and web again.
	fixture = []Endpoint{
		{ContainerID: "aaaaaaaaaaaa1111", Name: "web", Hostname: "webhost", Aliases: []string{"www", "ping.target"}, IP: ip("10.0.1.2"), NetworkID: "net1", NetworkName: "front"},
		{ContainerID: "bbbbbbbbbbbb2222", Name: "db1", Aliases: []string{"db"}, IP: ip("10.0.1.3"), NetworkID: "net1", NetworkName: "front"},
		{ContainerID: "cccccccccccc3333", Name: "db2", Aliases: []string{"db"}, IP: ip("10.0.1.4"), NetworkID: "net1", NetworkName: "front"},
		{ContainerID: "dddddddddddd4444", Name: "other", Aliases: []string{"db"}, IP: ip("10.0.2.2"), NetworkID: "net2", NetworkName: "back"},
		{ContainerID: "aaaaaaaaaaaa1111", Name: "web", Hostname: "webhost", IP: ip("10.0.2.3"), NetworkID: "net2", NetworkName: "back"},
		{ContainerID: "eeeeeeeeeeee5555", Name: "lonely", IP: ip("10.0.3.2"), NetworkID: "net3", NetworkName: "third"},
	}
)

func fixtureTable() *Table {
	t := NewTable()
	for _, ep := range fixture {
		t.Add(ep)
	}
	return t
}

// fakeUpstream answers every A query with 192.0.2.99 (never contacted: it is
// a handler, not a server).
type fakeUpstream struct{ calls int }

func (f *fakeUpstream) Name() string { return "fake" }
func (f *fakeUpstream) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	f.calls++
	return WriteAnswer(w, r, ARecords(r.Question[0].Name, []netip.Addr{ip("192.0.2.99")}))
}

func query(t *testing.T, h Handler, req *Request, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	w := &recorder{}
	Dispatch(WithRequest(context.Background(), req), h, w, m)
	assert.Assert(t, w.msg != nil, "no reply for %s", name)
	return w.msg
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.PTR:
			out = append(out, v.Ptr)
		}
	}
	slices.Sort(out)
	return out
}

func TestChain(t *testing.T) {
	records := fixtureTable()
	up := &fakeUpstream{}
	h := Chain(Names(), Zone(), func(Handler) Handler { return up })
	asker := func(netID string, addr string) *Request {
		r := &Request{Network: netID, Zone: "berth.internal", Records: records, Source: ip(addr)}
		if ep, ok := records.ByIP(netID, ip(addr)); ok {
			r.Asker = &ep
		}
		return r
	}
	web1 := asker("net1", "10.0.1.2")
	lonely := asker("net3", "10.0.3.2")
	host := asker("net1", "10.0.1.1")

	cases := []struct {
		name  string
		req   *Request
		qname string
		qtype uint16
		rcode int
		want  []string
		up    bool // answered upstream
	}{
		{"container name", web1, "db1", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3"}, false},
		{"case insensitive", web1, "DB1", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3"}, false},
		{"alias on two containers, receiving network first", web1, "db", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3", "10.0.1.4"}, false},
		{"name only on asker's other network", web1, "other", dns.TypeA, dns.RcodeSuccess, []string{"10.0.2.2"}, false},
		{"short id", web1, "bbbbbbbbbbbb", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3"}, false},
		{"hostname", asker("net1", "10.0.1.3"), "webhost", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.2"}, false},
		{"own alias", web1, "www", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.2"}, false},
		{"an alias with a dot, as Docker answers it", asker("net1", "10.0.1.3"), "ping.target", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.2"}, false},
		{"an unknown dotted name goes upstream", web1, "ping.other", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.99"}, true},
		{"in zone", web1, "db1.berth.internal", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3"}, false},
		{"AAAA of known name is empty NOERROR", web1, "db1", dns.TypeAAAA, dns.RcodeSuccess, nil, false},
		{"MX of known name is empty NOERROR", web1, "db1", dns.TypeMX, dns.RcodeSuccess, nil, false},
		{"name on another network is not resolved", lonely, "db1", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.99"}, true},
		{"unknown zone name is NXDOMAIN, not forwarded", web1, "nosuch.berth.internal", dns.TypeA, dns.RcodeNameError, nil, false},
		{"deployment-style name without plugin is NXDOMAIN", web1, "db.shop.berth.internal", dns.TypeA, dns.RcodeNameError, nil, false},
		{"external name forwarded", web1, "example.org", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.99"}, true},
		{"host asks the gateway: receiving network only", host, "db", dns.TypeA, dns.RcodeSuccess, []string{"10.0.1.3", "10.0.1.4"}, false},
		{"host cannot see other networks", host, "other", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.99"}, true},
		{"PTR", web1, "3.1.0.10.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"db1.front."}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.calls
			m := query(t, h, tc.req, tc.qname, tc.qtype)
			assert.Check(t, is.Equal(m.Rcode, tc.rcode))
			assert.Check(t, is.DeepEqual(answers(m), tc.want))
			assert.Check(t, is.Equal(up.calls > before, tc.up))
			if !tc.up {
				assert.Check(t, m.Authoritative)
			}
		})
	}
}

// TestChainIPv6: AAAA answers the IPv6 addresses of the same names A
// answers, with the same scoping (the asker's networks, the receiving one
// first); a name without addresses of the asked family is NODATA; askers
// are found by their IPv6 source; PTR works in ip6.arpa.
func TestChainIPv6(t *testing.T) {
	records := NewTable()
	for _, ep := range []Endpoint{
		{ContainerID: "aaaaaaaaaaaa1111", Name: "web", IP: ip("10.0.1.2"), IPv6: ip("fd00:1::2"), NetworkID: "dual", NetworkName: "dual"},
		{ContainerID: "bbbbbbbbbbbb2222", Name: "db", Aliases: []string{"store"}, IP: ip("10.0.1.3"), IPv6: ip("fd00:1::3"), NetworkID: "dual", NetworkName: "dual"},
		{ContainerID: "cccccccccccc3333", Name: "v4only", IP: ip("10.0.1.4"), NetworkID: "dual", NetworkName: "dual"},
		{ContainerID: "dddddddddddd4444", Name: "six", IPv6: ip("fd00:2::2"), NetworkID: "only6", NetworkName: "only6"},
		{ContainerID: "aaaaaaaaaaaa1111", Name: "web", IPv6: ip("fd00:2::3"), NetworkID: "only6", NetworkName: "only6"},
		{ContainerID: "eeeeeeeeeeee5555", Name: "hidden", IPv6: ip("fd00:3::2"), NetworkID: "other6", NetworkName: "other6"},
	} {
		records.Add(ep)
	}
	up := &fakeUpstream{}
	h := Chain(Names(), Zone(), func(Handler) Handler { return up })
	asker := func(netID, addr string) *Request {
		r := &Request{Network: netID, Zone: "berth.internal", Records: records, Source: ip(addr)}
		if ep, ok := records.ByIP(netID, ip(addr)); ok {
			r.Asker = &ep
		}
		return r
	}
	web := asker("dual", "fd00:1::2")
	assert.Assert(t, web.Asker != nil, "asker found by its IPv6 address")
	six := asker("only6", "fd00:2::2")
	cases := []struct {
		name  string
		req   *Request
		qname string
		qtype uint16
		want  []string
		up    bool
	}{
		{"AAAA", web, "db", dns.TypeAAAA, []string{"fd00:1::3"}, false},
		{"A of a dual-stack name", web, "db", dns.TypeA, []string{"10.0.1.3"}, false},
		{"ANY has both", web, "store", dns.TypeANY, []string{"10.0.1.3", "fd00:1::3"}, false},
		{"AAAA of an IPv4-only container is NODATA", web, "v4only", dns.TypeAAAA, nil, false},
		{"A of an IPv6-only container is NODATA", web, "six", dns.TypeA, nil, false},
		{"AAAA on the asker's other network", web, "six", dns.TypeAAAA, []string{"fd00:2::2"}, false},
		{"the receiving network wins", six, "web", dns.TypeAAAA, []string{"fd00:2::3"}, false},
		{"AAAA in the zone", web, "db.berth.internal", dns.TypeAAAA, []string{"fd00:1::3"}, false},
		{"a network the asker is not on is not seen", web, "hidden", dns.TypeAAAA, []string{}, true},
		{"PTR in ip6.arpa", web, "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa", dns.TypePTR, []string{"db.dual."}, false},
		{"PTR of an unseen address is forwarded", web, "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.0.0.d.f.ip6.arpa", dns.TypePTR, []string{"192.0.2.99"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.calls
			m := query(t, h, tc.req, tc.qname, tc.qtype)
			assert.Check(t, is.Equal(m.Rcode, dns.RcodeSuccess))
			if tc.up {
				assert.Check(t, up.calls > before)
				return
			}
			assert.Check(t, is.DeepEqual(answers(m), tc.want))
			assert.Check(t, up.calls == before)
		})
	}
}

func TestReverseV6(t *testing.T) {
	a, ok := reverseV6("d.0.0.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.8.3.0.1.0.0.2.ip6.arpa")
	assert.Check(t, ok)
	assert.Check(t, is.Equal(a, ip("2001:389::f00d")))
	for _, bad := range []string{"1.0.ip6.arpa", "x.0.0.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.8.3.0.1.0.0.2.ip6.arpa", "3.1.0.10.in-addr.arpa"} {
		_, ok := reverseV6(bad)
		assert.Check(t, !ok, bad)
	}
}

func TestRoundRobin(t *testing.T) {
	records := fixtureTable()
	h := Chain(Names())
	ep, _ := records.ByIP("net1", ip("10.0.1.2"))
	req := &Request{Network: "net1", Zone: "berth.internal", Records: records, Asker: &ep}
	firsts := map[string]bool{}
	for i := 0; i < 4; i++ {
		m := query(t, h, req, "db", dns.TypeA)
		assert.Assert(t, is.Len(m.Answer, 2))
		firsts[m.Answer[0].(*dns.A).A.String()] = true
	}
	assert.Check(t, is.Len(firsts, 2), "order never rotated")
}

func TestPluginBeforeNames(t *testing.T) {
	// a plugin in front of Names sees the asker and the records and may
	// answer first (how compose scoping plugs in)
	records := fixtureTable()
	scoped := func(next Handler) Handler {
		return handlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			req := RequestFrom(ctx)
			if Normalize(r.Question[0].Name) == "db" && req.Asker != nil && req.Asker.Name == "web" {
				return WriteAnswer(w, r, ARecords(r.Question[0].Name, []netip.Addr{ip("10.0.1.4")}))
			}
			return NextOrFailure(ctx, next, w, r)
		})
	}
	h := Chain(scoped, Names(), Zone())
	ep, _ := records.ByIP("net1", ip("10.0.1.2"))
	req := &Request{Network: "net1", Zone: "berth.internal", Records: records, Asker: &ep}
	assert.Check(t, is.DeepEqual(answers(query(t, h, req, "db", dns.TypeA)), []string{"10.0.1.4"}))
	assert.Check(t, is.DeepEqual(answers(query(t, h, req, "db1", dns.TypeA)), []string{"10.0.1.3"}))
}

type handlerFunc func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)

func (f handlerFunc) Name() string { return "func" }
func (f handlerFunc) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return f(ctx, w, r)
}

func TestForwardNoUpstream(t *testing.T) {
	h := Chain(Names(), Zone(), Forward(func() []netip.AddrPort { return nil }, time.Second))
	m := query(t, h, &Request{Zone: "berth.internal", Records: NewTable()}, "example.org", dns.TypeA)
	assert.Check(t, is.Equal(m.Rcode, dns.RcodeServerFailure))
}

func TestParseNameservers(t *testing.T) {
	in := []byte("# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nsearch example\nnameserver fd00::1\nnameserver bogus\n")
	var got []string
	for _, ap := range ParseNameservers(in) {
		got = append(got, ap.String())
	}
	assert.DeepEqual(t, got, []string{"10.255.255.53:53", "[fd00::1]:53"})
}

func TestEndpointNames(t *testing.T) {
	// Docker's DNSNames order: name, aliases, short id, hostname; no duplicates
	ep := Endpoint{ContainerID: "0123456789abcdef", Name: "web", Hostname: "0123456789ab", Aliases: []string{"www", "web"}}
	assert.DeepEqual(t, ep.Names(), []string{"web", "www", "0123456789ab"})
	ep = Endpoint{ContainerID: "0123456789abcdef", Name: "web", Hostname: "box", Aliases: []string{"www"}}
	assert.DeepEqual(t, ep.Names(), []string{"web", "www", "0123456789ab", "box"})
}

// TestServerLoopback runs the real server (UDP and TCP) on loopback with a
// real upstream server, also on loopback.
func TestServerLoopback(t *testing.T) {
	upPC, err := net.ListenPacket("udp4", "127.0.0.1:0")
	assert.NilError(t, err)
	upL, err := net.Listen("tcp4", upPC.LocalAddr().String())
	assert.NilError(t, err)
	upH := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = ARecords(r.Question[0].Name, []netip.Addr{ip("192.0.2.7")})
		_ = w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: upPC, Handler: upH}, {Listener: upL, Handler: upH}} {
		go func() { _ = s.ActivateAndServe() }()
		defer s.Shutdown()
	}

	records := NewTable()
	records.Add(Endpoint{ContainerID: "ffffffffffff0000", Name: "svc", IP: ip("10.9.0.2"), NetworkID: "n"})
	// the test asks from 127.0.0.1: a container as far as the server knows
	records.Add(Endpoint{ContainerID: "eeeeeeeeeeee0000", Name: "asker", IP: ip("127.0.0.1"), NetworkID: "n"})
	upstream := netip.MustParseAddrPort(upPC.LocalAddr().String())
	h := Chain(Names(), Zone(), Forward(func() []netip.AddrPort { return []netip.AddrPort{upstream} }, 2*time.Second))

	// pick a free port for both protocols
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv, err := Serve(Listener{Addr: ip("127.0.0.1"), Port: port, NetworkID: "n"}, h, records, "berth.internal")
	assert.NilError(t, err)
	defer srv.Close()

	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("svc.", dns.TypeA)
		resp, _, err := c.Exchange(m, addr)
		assert.NilError(t, err, proto)
		assert.Check(t, is.DeepEqual(answers(resp), []string{"10.9.0.2"}), proto)

		m.SetQuestion("example.org.", dns.TypeA)
		resp, _, err = c.Exchange(m, addr)
		assert.NilError(t, err, proto)
		assert.Check(t, is.DeepEqual(answers(resp), []string{"192.0.2.7"}), proto)
	}
}

// TestServerIPv6: a server on an IPv6 address answers AAAA to a known
// container asking from its IPv6 address, and refuses anyone else.
func TestServerIPv6(t *testing.T) {
	records := NewTable()
	records.Add(Endpoint{ContainerID: "ffffffffffff0000", Name: "svc", IP: ip("10.9.0.2"), IPv6: ip("fd00:9::2"), NetworkID: "n"})
	l, err := net.Listen("tcp6", "[::1]:0")
	assert.NilError(t, err)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv, err := Serve(Listener{Addr: netip.IPv6Loopback(), Port: port, NetworkID: "n"}, Chain(Names(), Zone()), records, "berth.internal")
	assert.NilError(t, err)
	defer srv.Close()
	addr := net.JoinHostPort("::1", itoa(port))
	ask := func(proto string) *dns.Msg {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("svc.", dns.TypeAAAA)
		resp, _, err := c.Exchange(m, addr)
		assert.NilError(t, err, proto)
		return resp
	}
	for _, proto := range []string{"udp", "tcp"} {
		assert.Check(t, is.Equal(ask(proto).Rcode, dns.RcodeRefused), "%s: ::1 is no container", proto)
	}
	records.Add(Endpoint{ContainerID: "eeeeeeeeeeee0000", Name: "asker", IPv6: netip.IPv6Loopback(), NetworkID: "n"})
	for _, proto := range []string{"udp", "tcp"} {
		resp := ask(proto)
		assert.Check(t, is.Equal(resp.Rcode, dns.RcodeSuccess), proto)
		assert.Check(t, is.DeepEqual(answers(resp), []string{"fd00:9::2"}), proto)
	}
	// the IPv4 side of the host is not served by an IPv6 listener
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("svc.", dns.TypeA)
	_, _, err = c.Exchange(m, net.JoinHostPort("127.0.0.1", itoa(port)))
	assert.Check(t, err != nil, "an IPv6 server answered on 127.0.0.1")
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func FuzzDispatch(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("db.", dns.TypeA)
	b, _ := m.Pack()
	f.Add(b)
	m.SetQuestion("3.1.0.10.in-addr.arpa.", dns.TypePTR)
	b, _ = m.Pack()
	f.Add(b)
	m.SetQuestion("d.0.0.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.8.3.0.1.0.0.2.ip6.arpa.", dns.TypePTR)
	b, _ = m.Pack()
	f.Add(b)
	m.SetQuestion("db.", dns.TypeAAAA)
	b, _ = m.Pack()
	f.Add(b)
	records := fixtureTable()
	h := Chain(Names(), Zone())
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(data) != nil {
			return
		}
		ep, _ := records.ByIP("net1", ip("10.0.1.2"))
		w := &recorder{}
		Dispatch(WithRequest(context.Background(), &Request{Network: "net1", Zone: "berth.internal", Records: records, Asker: &ep}), h, w, msg)
		if w.msg == nil {
			t.Fatalf("no reply to %v", msg)
		}
	})
}

func TestTableSnapshotFollowsChanges(t *testing.T) {
	tbl := NewTable()
	assert.Check(t, is.Len(tbl.Endpoints(), 0))
	tbl.Add(Endpoint{NetworkID: "n1", ContainerID: "b", Name: "bee", IP: netip.MustParseAddr("10.0.0.3")})
	tbl.Add(Endpoint{NetworkID: "n1", ContainerID: "a", Name: "ay", IP: netip.MustParseAddr("10.0.0.2")})
	first := tbl.Endpoints()
	assert.Assert(t, is.Len(first, 2))
	assert.Check(t, is.Equal(&first[0], &tbl.Endpoints()[0]), "an unchanged table answers with the same snapshot")

	tbl.Remove("n1", "a")
	after := tbl.Endpoints()
	assert.Assert(t, is.Len(after, 1))
	assert.Check(t, is.Equal(after[0].Name, "bee"))
	assert.Check(t, is.Len(first, 2), "an earlier snapshot is not changed under its reader")

	tbl.Add(Endpoint{NetworkID: "n2", ContainerID: "c", Name: "cee", IP: netip.MustParseAddr("10.0.1.2")})
	assert.Check(t, is.Len(tbl.Endpoints(), 2))
}
