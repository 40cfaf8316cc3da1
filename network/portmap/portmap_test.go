package portmap

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		spec string
		want []string // "port hostip hostport"
		err  bool
	}{
		{spec: "80", want: []string{"80/tcp invalid IP "}},
		{spec: "8080:80", want: []string{"80/tcp invalid IP 8080"}},
		{spec: "127.0.0.1:8080:80/udp", want: []string{"80/udp 127.0.0.1 8080"}},
		{spec: "127.0.0.1::80", want: []string{"80/tcp 127.0.0.1 "}},
		{spec: "[::1]:8080:80", want: []string{"80/tcp ::1 8080"}},
		{spec: "8000-8001:80-81", want: []string{"80/tcp invalid IP 8000", "81/tcp invalid IP 8001"}},
		{spec: "8000-8010:80", want: []string{"80/tcp invalid IP 8000-8010"}},
		{spec: "80-81", want: []string{"80/tcp invalid IP ", "81/tcp invalid IP "}},
		{spec: "53/UDP", want: []string{"53/udp invalid IP "}},
		{spec: "", err: true},
		{spec: "8080:", err: true},
		{spec: "0:80", err: true},
		{spec: "65536:80", err: true},
		{spec: "80/icmp", err: true},
		{spec: "1.2.3.4.5:80:80", err: true},
		{spec: "a:b:c:d", err: true},
		{spec: "8000-8002:80-81", err: true},
		{spec: "81-80", err: true},
		{spec: "[::1:80:80", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseSpec(tc.spec)
			if tc.err {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				return
			}
			assert.NilError(t, err)
			var s []string
			for _, m := range got {
				s = append(s, m.Port.String()+" "+m.Binding.HostIP.String()+" "+m.Binding.HostPort)
			}
			assert.DeepEqual(t, s, tc.want)
		})
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "[::1]:1:2", "8000-8010:80", "1-2:3-4/sctp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseSpec(s)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: unclassified error %v", s, err)
			}
			return
		}
		if len(ms) == 0 {
			t.Fatalf("%q: no mapping and no error", s)
		}
		for _, m := range ms {
			if !m.Port.IsValid() || m.Port.Num() == 0 {
				t.Fatalf("%q: bad port %v", s, m.Port)
			}
			if _, _, err := HostPortRange(m.Binding.HostPort); err != nil {
				t.Fatalf("%q: host port %q does not parse back: %v", s, m.Binding.HostPort, err)
			}
		}
	})
}

func TestHostPortRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi uint16
		err    bool
	}{
		{"", 0, 0, false}, {"0", 0, 0, false}, {"8080", 8080, 8080, false}, {"8000-8010", 8000, 8010, false},
		{"x", 0, 0, true}, {"9-8", 0, 0, true},
	} {
		lo, hi, err := HostPortRange(tc.in)
		if tc.err {
			assert.Check(t, errdefs.IsInvalidArgument(err))
			continue
		}
		assert.NilError(t, err)
		assert.Check(t, is.Equal(lo, tc.lo))
		assert.Check(t, is.Equal(hi, tc.hi))
	}
}

func freePort(t *testing.T) uint16 {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func TestAllocator(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := NewAllocator(EphemeralRange())
	defer a.Close()

	p := freePort(t)
	got, err := a.Request(lo, "tcp", p, p)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, p))

	// the port is really held: nobody else can listen on it
	_, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(int(p)))
	assert.Check(t, err != nil)

	// asking again, or on every address, is dockerd's error
	_, err = a.Request(lo, "tcp", p, p)
	assert.Check(t, is.Error(err, "Bind for 127.0.0.1:"+strconv.Itoa(int(p))+" failed: port is already allocated"))
	_, err = a.Request(netip.Addr{}, "tcp", p, p)
	assert.Check(t, is.ErrorContains(err, "Bind for 0.0.0.0:"+strconv.Itoa(int(p))+" failed: port is already allocated"))

	// udp is another port
	_, err = a.Request(lo, "udp", p, p)
	assert.NilError(t, err)

	// a port held by another process
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	_, err = a.Request(lo, "tcp", busy, busy)
	assert.Check(t, is.ErrorContains(err, "port is already allocated"))

	// a range skips the busy port
	got, err = a.Request(lo, "tcp", busy, busy+1)
	if err == nil {
		assert.Check(t, is.Equal(got, busy+1))
	}

	// ephemeral ports come from the range
	elo, ehi := EphemeralRange()
	got, err = a.Request(lo, "tcp", 0, 0)
	assert.NilError(t, err)
	assert.Check(t, got >= elo && got <= ehi)

	a.Release(Key{lo, "tcp", p})
	l2, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(int(p)))
	assert.NilError(t, err)
	l2.Close()
}

func TestAllocatorExhausted(t *testing.T) {
	a := NewAllocator(40000, 40001)
	a.bind = func(Key) (io.Closer, error) { return nopCloser{}, nil }
	defer a.Close()
	for i := 0; i < 2; i++ {
		_, err := a.Request(netip.Addr{}, "tcp", 0, 0)
		assert.NilError(t, err)
	}
	_, err := a.Request(netip.Addr{}, "tcp", 0, 0)
	assert.Check(t, errdefs.IsResourceExhausted(err), "%v", err)
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// TestAllocatorFamilies: 0.0.0.0 and :: are held apart (an IPv6 socket on
// :: takes no IPv4), as dockerd binds both for one published port.
func TestAllocatorFamilies(t *testing.T) {
	a := NewAllocator(EphemeralRange())
	defer a.Close()
	p, err := a.Request(netip.IPv4Unspecified(), "tcp", 0, 0)
	assert.NilError(t, err)
	_, err = a.Request(netip.IPv6Unspecified(), "tcp", p, p)
	assert.NilError(t, err, "the same port on ::")
	_, err = a.Request(netip.IPv6Loopback(), "tcp", p, p)
	assert.Check(t, is.ErrorContains(err, "Bind for [::1]:"+strconv.Itoa(int(p))+" failed: port is already allocated"))
	_, err = a.Request(netip.MustParseAddr("127.0.0.1"), "tcp", p, p)
	assert.Check(t, is.ErrorContains(err, "port is already allocated"))
	// udp is another table
	_, err = a.Request(netip.IPv6Unspecified(), "udp", p, p)
	assert.NilError(t, err)
}

func echoTCP(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen(network, addr)
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// TestForwardTCP: a held ::1 port passes connections to the target both
// ways, a half-close included, and releasing it ends live connections.
func TestForwardTCP(t *testing.T) {
	target := echoTCP(t, "tcp6", "[::1]:0")
	a := NewAllocator(EphemeralRange())
	defer a.Close()
	p, err := a.Request(netip.IPv6Loopback(), "tcp", 0, 0)
	assert.NilError(t, err)
	k := Key{netip.IPv6Loopback(), "tcp", p}
	assert.NilError(t, a.Forward(k, target))
	assert.NilError(t, a.Forward(k, target), "twice")
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String())
		assert.NilError(t, err)
		_, err = c.Write([]byte("ping"))
		assert.NilError(t, err)
		assert.NilError(t, c.(*net.TCPConn).CloseWrite())
		b, err := io.ReadAll(c)
		c.Close()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(b), "ping"))
	}
	live, err := net.Dial("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String())
	assert.NilError(t, err)
	defer live.Close()
	_, err = live.Write([]byte("x"))
	assert.NilError(t, err)
	one := make([]byte, 1)
	_, err = io.ReadFull(live, one)
	assert.NilError(t, err)
	a.Release(k)
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = live.Read(one)
	assert.Check(t, err != nil, "a released port ends its connections")
	_, err = net.Dial("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String())
	assert.Check(t, err != nil, "nothing listens after release")

	err = a.Forward(Key{netip.IPv6Loopback(), "tcp", 1}, target)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
}

// TestForwardUDP: answers go back to the client that asked.
func TestForwardUDP(t *testing.T) {
	srv, err := net.ListenPacket("udp6", "[::1]:0")
	assert.NilError(t, err)
	defer srv.Close()
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	a := NewAllocator(EphemeralRange())
	defer a.Close()
	p, err := a.Request(netip.IPv6Loopback(), "udp", 0, 0)
	assert.NilError(t, err)
	assert.NilError(t, a.Forward(Key{netip.IPv6Loopback(), "udp", p}, srv.LocalAddr().(*net.UDPAddr).AddrPort()))
	for _, msg := range []string{"a", "b"} {
		c, err := net.Dial("udp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String())
		assert.NilError(t, err)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write([]byte(msg))
		assert.NilError(t, err)
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		c.Close()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(buf[:n]), "re:"+msg))
	}
	done := make(chan struct{})
	go func() { a.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("closing a UDP forwarder waits for its flows to idle out")
	}
}
