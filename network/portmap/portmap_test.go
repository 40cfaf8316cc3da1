package portmap

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"

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
