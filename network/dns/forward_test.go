package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// upstreamServer is a DNS server answering every A query with answer, on
// listeners made by listen (in a namespace or on the host).
func upstreamServer(t *testing.T, pc net.PacketConn, l net.Listener, answer string) {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, _ = WriteAnswer(w, r, ARecords(r.Question[0].Name, []netip.Addr{ip(answer)}))
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
}

// testNetns makes a named network namespace with loopback up and returns
// its path.
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces); make test runs as root")
	}
	name := fmt.Sprintf("berth-dnstest-%d", os.Getpid())
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	assert.NilError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	path := filepath.Join("/run/netns", name)
	inNetns(t, path, func() {
		lo, err := netlink.LinkByName("lo")
		assert.NilError(t, err)
		assert.NilError(t, netlink.LinkSetUp(lo))
	})
	return path
}

func inNetns(t *testing.T, path string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread()
		orig, err := netns.Get()
		assert.Check(t, err)
		target, err := netns.GetFromPath(path)
		assert.Check(t, err)
		assert.Check(t, netns.Set(target))
		fn()
		if netns.Set(orig) == nil {
			goruntime.UnlockOSThread()
		}
	}()
	<-done
}

// TestForwardToTheAskersOwnUpstreams: a container with --dns has its
// unknown names forwarded there, another container's go to the daemon's
// upstreams, and a loopback --dns server is the container's own loopback,
// never the host's.
func TestForwardToTheAskersOwnUpstreams(t *testing.T) {
	// the daemon's upstream, on the host's loopback
	hostPC, err := net.ListenPacket("udp4", "127.0.0.1:0")
	assert.NilError(t, err)
	hostL, err := net.Listen("tcp4", hostPC.LocalAddr().String())
	assert.NilError(t, err)
	upstreamServer(t, hostPC, hostL, "192.0.2.1")
	hostUp := netip.MustParseAddrPort(hostPC.LocalAddr().String())

	// the container's own server, on its loopback, same port as the host's
	// one so that a query sent to the wrong namespace gets the host's answer
	nsPath := testNetns(t)
	var nsPC net.PacketConn
	var nsL net.Listener
	inNetns(t, nsPath, func() {
		nsPC, err = net.ListenPacket("udp4", hostUp.String())
		assert.Check(t, err)
		nsL, err = net.Listen("tcp4", hostUp.String())
		assert.Check(t, err)
	})
	assert.Assert(t, nsPC != nil && nsL != nil)
	upstreamServer(t, nsPC, nsL, "192.0.2.2")

	records := NewTable()
	plain := Endpoint{ContainerID: "aaaa", Name: "plain", IP: ip("10.0.0.2"), NetworkID: "n"}
	ownLoop := Endpoint{ContainerID: "bbbb", Name: "ownloop", IP: ip("10.0.0.3"), NetworkID: "n", Upstreams: []netip.AddrPort{hostUp}, NsPath: nsPath}
	noNS := Endpoint{ContainerID: "cccc", Name: "nons", IP: ip("10.0.0.4"), NetworkID: "n", Upstreams: []netip.AddrPort{hostUp}}
	for _, ep := range []Endpoint{plain, ownLoop, noNS} {
		records.Add(ep)
	}
	h := Chain(Names(), Zone(), Forward(func() []netip.AddrPort { return []netip.AddrPort{hostUp} }, 2*time.Second))
	ask := func(ep Endpoint, name string, proto string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		w := &recorder{}
		if proto == "tcp" {
			w.remote = &net.TCPAddr{IP: ep.IP.AsSlice(), Port: 4000}
		}
		Dispatch(WithRequest(t.Context(), &Request{Network: "n", Zone: "berth.internal", Records: records, Asker: &ep}), h, w, m)
		assert.Assert(t, w.msg != nil)
		return w.msg
	}
	for _, proto := range []string{"udp", "tcp"} {
		assert.Check(t, is.DeepEqual(answers(ask(plain, "example.org", proto)), []string{"192.0.2.1"}), "daemon upstream, %s", proto)
		assert.Check(t, is.DeepEqual(answers(ask(ownLoop, "example.org", proto)), []string{"192.0.2.2"}), "own loopback server, %s", proto)
		assert.Check(t, is.Equal(ask(noNS, "example.org", proto).Rcode, dns.RcodeServerFailure), "loopback without a namespace, %s", proto)
		// berth's own names never go to anyone's upstream
		assert.Check(t, is.DeepEqual(answers(ask(ownLoop, "plain", proto)), []string{"10.0.0.2"}))
	}
}

func TestNoEgressForInternalOnlyContainers(t *testing.T) {
	up := &fakeUpstream{}
	records := NewTable()
	inner := Endpoint{ContainerID: "aaaa", Name: "inner", IP: ip("10.0.9.2"), NetworkID: "int", Internal: true}
	both := Endpoint{ContainerID: "bbbb", Name: "both", IP: ip("10.0.9.3"), NetworkID: "int", Internal: true}
	records.Add(inner)
	records.Add(both)
	records.Add(Endpoint{ContainerID: "bbbb", Name: "both", IP: ip("10.0.8.3"), NetworkID: "ext"})
	h := Chain(Names(), Zone(), func(Handler) Handler { return up })
	fwd := Forward(func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")} }, time.Second)(nil)
	ask := func(ep Endpoint) *Request {
		return &Request{Network: "int", Internal: true, Zone: "berth.internal", Records: records, Asker: &ep}
	}
	m := query(t, fwd, ask(inner), "example.org", dns.TypeA)
	assert.Check(t, is.Equal(m.Rcode, dns.RcodeServerFailure), "only internal networks: no way out")
	assert.Check(t, !ask(both).NoEgress(), "a container with an external network has a way out")
	assert.Check(t, ask(inner).NoEgress())
	assert.Check(t, is.DeepEqual(answers(query(t, h, ask(inner), "both", dns.TypeA)), []string{"10.0.9.3"}))
}

// TestServerRefusesStrangersAndTruncates runs the real server: a source
// that is no container on the network is REFUSED, and a UDP answer never
// exceeds what the query allows.
func TestServerRefusesStrangersAndTruncates(t *testing.T) {
	records := NewTable()
	for i := 0; i < 100; i++ {
		records.Add(Endpoint{ContainerID: fmt.Sprintf("%016x", i+1), Name: fmt.Sprintf("m%d", i), Aliases: []string{"many"}, IP: netip.AddrFrom4([4]byte{10, 7, byte(i / 200), byte(2 + i%200)}), NetworkID: "n"})
	}
	h := Chain(Names(), Zone())
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv, err := Serve(Listener{Addr: ip("127.0.0.1"), Port: port, NetworkID: "n"}, h, records, "berth.internal")
	assert.NilError(t, err)
	defer srv.Close()
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	ask := func(proto string, edns uint16) *dns.Msg {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second, UDPSize: 65535}
		m := new(dns.Msg)
		m.SetQuestion("many.", dns.TypeA)
		if edns > 0 {
			m.SetEdns0(edns, false)
		}
		resp, _, err := c.Exchange(m, addr)
		assert.NilError(t, err)
		return resp
	}

	assert.Check(t, is.Equal(ask("udp", 0).Rcode, dns.RcodeRefused), "127.0.0.1 is no container of the network")
	assert.Check(t, is.Equal(ask("tcp", 0).Rcode, dns.RcodeRefused))

	records.Add(Endpoint{ContainerID: "ffffffffffffffff", Name: "asker", IP: ip("127.0.0.1"), NetworkID: "n"})
	small := ask("udp", 0)
	assert.Check(t, small.Truncated, "100 A records do not fit 512 bytes")
	small.Compress = true
	b, _ := small.Pack()
	assert.Check(t, len(b) <= 512, "%d bytes", len(b))
	edns := ask("udp", 1232)
	edns.Compress = true
	b, _ = edns.Pack()
	assert.Check(t, len(b) <= 1232, "%d bytes", len(b))
	assert.Check(t, len(edns.Answer) > len(small.Answer))
	full := ask("tcp", 0)
	assert.Check(t, !full.Truncated)
	assert.Check(t, is.Len(full.Answer, 100))
	assert.Check(t, !strings.Contains(fmt.Sprint(full.Answer), "10.7.0.1\t"), "nothing but the records")
}
