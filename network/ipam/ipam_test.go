package ipam

import (
	"net/netip"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParsePool(t *testing.T) {
	cases := []struct {
		in   string
		want Pool
		err  bool
	}{
		{in: "base=10.210.0.0/16,size=24", want: Pool{netip.MustParsePrefix("10.210.0.0/16"), 24}},
		{in: "size=20, base=10.216.16.0/20", want: Pool{netip.MustParsePrefix("10.216.16.0/20"), 20}},
		{in: "base=10.210.0.0/16", err: true},
		{in: "base=10.210.0.0/16,size=8", err: true},
		{in: "base=fd6b:e27a:1::/48,size=64", want: Pool{netip.MustParsePrefix("fd6b:e27a:1::/48"), 64}},
		{in: "base=fd00::/64,size=127", err: true},
		{in: "base=::ffff:10.0.0.0/104,size=120", err: true},
		{in: "base=fe80::1%eth0/64,size=64", err: true},
		{in: "base=nope,size=24", err: true},
		{in: "color=blue", err: true},
		{in: "", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePool(tc.in)
			if tc.err {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(p, tc.want))
		})
	}
}

func TestNextSubnet(t *testing.T) {
	pools := []Pool{{netip.MustParsePrefix("10.210.0.0/16"), 24}, {netip.MustParsePrefix("10.99.0.0/23"), 24}}
	pfx := netip.MustParsePrefix
	cases := []struct {
		name string
		used []netip.Prefix
		want string
		err  error
	}{
		{name: "empty", want: "10.210.0.0/24"},
		{name: "bip taken", used: []netip.Prefix{pfx("10.210.0.0/24")}, want: "10.210.1.0/24"},
		{name: "big used block skipped", used: []netip.Prefix{pfx("10.210.0.0/17")}, want: "10.210.128.0/24"},
		{name: "small used block", used: []netip.Prefix{pfx("10.210.0.128/25")}, want: "10.210.1.0/24"},
		{name: "first pool full", used: []netip.Prefix{pfx("10.210.0.0/16")}, want: "10.99.0.0/24"},
		{name: "all full", used: []netip.Prefix{pfx("10.210.0.0/16"), pfx("10.99.0.0/16")}, err: ErrNoPool},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NextSubnet(pools, tc.used, false)
			if tc.err != nil {
				assert.Check(t, errdefs.IsResourceExhausted(err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got.String(), tc.want))
		})
	}
}

func TestSubnetAllocate(t *testing.T) {
	a := netip.MustParseAddr
	s, err := NewSubnet(netip.MustParsePrefix("10.1.0.0/29"), netip.Prefix{}, a("10.1.0.1"))
	assert.NilError(t, err)

	// sequential, skipping the gateway
	for _, want := range []string{"10.1.0.2", "10.1.0.3"} {
		got, err := s.Allocate(netip.Addr{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, a(want)))
	}
	// static
	got, err := s.Allocate(a("10.1.0.6"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, a("10.1.0.6")))

	for _, tc := range []struct {
		ip    string
		check func(error) bool
		msg   string
	}{
		{"10.1.0.6", errdefs.IsConflict, "Address already in use"},
		{"10.1.0.1", errdefs.IsConflict, "Address already in use"},
		{"10.1.0.7", errdefs.IsConflict, "Address already in use"}, // broadcast
		{"10.1.0.0", errdefs.IsConflict, "Address already in use"}, // network
		{"10.2.0.5", errdefs.IsInvalidArgument, "invalid IP address 10.2.0.5: It does not belong to any of this network's subnets"},
	} {
		_, err := s.Allocate(a(tc.ip))
		assert.Check(t, tc.check(err), "%s: %v", tc.ip, err)
		assert.Check(t, is.ErrorContains(err, tc.msg))
	}

	// two left: .4 .5, then exhausted
	for _, want := range []string{"10.1.0.4", "10.1.0.5"} {
		got, err := s.Allocate(netip.Addr{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, a(want)))
	}
	_, err = s.Allocate(netip.Addr{})
	assert.Check(t, errdefs.IsResourceExhausted(err), "%v", err)

	// released addresses come back, after the cursor wraps
	s.Release(a("10.1.0.3"))
	got, err = s.Allocate(netip.Addr{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, a("10.1.0.3")))
	assert.Check(t, is.Equal(s.InUse(), 5))
}

func TestSubnetNoQuickReuse(t *testing.T) {
	s, err := NewSubnet(netip.MustParsePrefix("10.1.0.0/24"), netip.Prefix{}, netip.MustParseAddr("10.1.0.1"))
	assert.NilError(t, err)
	first, _ := s.Allocate(netip.Addr{})
	s.Release(first)
	second, _ := s.Allocate(netip.Addr{})
	assert.Check(t, first != second, "released %s handed out again at once", first)
}

func TestSubnetIPRange(t *testing.T) {
	a := netip.MustParseAddr
	s, err := NewSubnet(netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.1.0.128/30"), a("10.1.0.1"))
	assert.NilError(t, err)
	var got []string
	for {
		ip, err := s.Allocate(netip.Addr{})
		if err != nil {
			assert.Check(t, errdefs.IsResourceExhausted(err))
			break
		}
		got = append(got, ip.String())
	}
	assert.DeepEqual(t, got, []string{"10.1.0.128", "10.1.0.129", "10.1.0.130", "10.1.0.131"})
	// a static address outside the range but in the subnet is fine (dockerd >= 25)
	_, err = s.Allocate(a("10.1.0.20"))
	assert.NilError(t, err)
}

func TestNewSubnetInvalid(t *testing.T) {
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	cases := []struct {
		name    string
		subnet  netip.Prefix
		rng     netip.Prefix
		gateway netip.Addr
	}{
		{"gateway outside", p("10.1.0.0/24"), netip.Prefix{}, a("10.2.0.1")},
		{"range outside", p("10.1.0.0/24"), p("10.2.0.0/25"), a("10.1.0.1")},
		{"range bigger", p("10.1.0.0/24"), p("10.1.0.0/23"), a("10.1.0.1")},
		{"too small", p("10.1.0.0/31"), netip.Prefix{}, a("10.1.0.1")},
		{"v6 too small", p("fd00::/127"), netip.Prefix{}, a("fd00::1")},
		{"v6 gateway outside", p("fd00::/64"), netip.Prefix{}, a("fd01::1")},
		{"v6 range v4", p("fd00::/64"), p("10.1.0.0/24"), a("fd00::1")},
		{"v6 range outside", p("fd00::/64"), p("fd01::/80"), a("fd00::1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSubnet(tc.subnet, tc.rng, tc.gateway)
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
		})
	}
}

func TestNextSubnet6(t *testing.T) {
	pfx := netip.MustParsePrefix
	pools := []Pool{{pfx("10.210.0.0/16"), 24}, {pfx("fd6b:e27a:1::/48"), 64}, {pfx("fd6b:e27a:2::/63"), 64}}
	cases := []struct {
		name string
		used []netip.Prefix
		want string
		err  bool
	}{
		{name: "empty", want: "fd6b:e27a:1::/64"},
		{name: "v4 used does not count", used: []netip.Prefix{pfx("10.210.0.0/16")}, want: "fd6b:e27a:1::/64"},
		{name: "first taken", used: []netip.Prefix{pfx("fd6b:e27a:1::/64")}, want: "fd6b:e27a:1:1::/64"},
		{name: "small used block", used: []netip.Prefix{pfx("fd6b:e27a:1::8/126")}, want: "fd6b:e27a:1:1::/64"},
		{name: "big used block skipped", used: []netip.Prefix{pfx("fd6b:e27a:1::/49")}, want: "fd6b:e27a:1:8000::/64"},
		{name: "first pool full", used: []netip.Prefix{pfx("fd6b:e27a:1::/48")}, want: "fd6b:e27a:2::/64"},
		{name: "all full", used: []netip.Prefix{pfx("fd6b:e27a::/32")}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NextSubnet(pools, tc.used, true)
			if tc.err {
				assert.Check(t, errdefs.IsResourceExhausted(err))
				assert.Check(t, is.ErrorContains(err, "IPv6"))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got.String(), tc.want))
		})
	}
	// a family without pools is exhausted at once
	_, err := NextSubnet(pools[:1], nil, true)
	assert.Check(t, errdefs.IsResourceExhausted(err))
}

func TestULAPool(t *testing.T) {
	a, b := ULAPool("host-a"), ULAPool("host-b")
	assert.Check(t, is.Equal(a, ULAPool("host-a")), "stable")
	assert.Check(t, a != b)
	for _, p := range []Pool{a, b} {
		assert.Check(t, netip.MustParsePrefix("fd00::/8").Contains(p.Base.Addr()), "%s", p)
		assert.Check(t, is.Equal(p.Base.Bits(), 48))
		assert.Check(t, is.Equal(p.Size, 64))
		assert.Check(t, p.Base.Masked() == p.Base)
	}
}

func TestSubnet6Allocate(t *testing.T) {
	a := netip.MustParseAddr
	s, err := NewSubnet(netip.MustParsePrefix("fd00:1::/64"), netip.Prefix{}, a("fd00:1::1"))
	assert.NilError(t, err)
	for _, want := range []string{"fd00:1::2", "fd00:1::3"} {
		got, err := s.Allocate(netip.Addr{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, a(want)))
	}
	got, err := s.Allocate(a("fd00:1::f00d"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, a("fd00:1::f00d")))
	// the last address of an IPv6 subnet is an ordinary one (no broadcast)
	_, err = s.Allocate(a("fd00:1::ffff:ffff:ffff:ffff"))
	assert.NilError(t, err)
	for _, tc := range []struct {
		ip    string
		check func(error) bool
	}{
		{"fd00:1::f00d", errdefs.IsConflict},
		{"fd00:1::", errdefs.IsConflict},  // subnet-router anycast
		{"fd00:1::1", errdefs.IsConflict}, // gateway
		{"fd00:2::5", errdefs.IsInvalidArgument},
		{"10.0.0.5", errdefs.IsInvalidArgument},
	} {
		_, err := s.Allocate(a(tc.ip))
		assert.Check(t, tc.check(err), "%s: %v", tc.ip, err)
	}
	assert.Check(t, is.Equal(s.InUse(), 4))
}

func TestSubnet6RangeExhausted(t *testing.T) {
	a := netip.MustParseAddr
	// docker-py's test_connect_with_ipv6_address: gateway at the end of the range
	s, err := NewSubnet(netip.MustParsePrefix("2001:389::/64"), netip.MustParsePrefix("2001:389::/126"), a("2001:389::ffff"))
	assert.NilError(t, err)
	var got []string
	for {
		ip, err := s.Allocate(netip.Addr{})
		if err != nil {
			assert.Check(t, errdefs.IsResourceExhausted(err))
			assert.Check(t, is.ErrorContains(err, "no available IPv6 addresses"))
			break
		}
		got = append(got, ip.String())
	}
	assert.DeepEqual(t, got, []string{"2001:389::1", "2001:389::2", "2001:389::3"})
	s.Release(a("2001:389::2"))
	ip, err := s.Allocate(netip.Addr{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ip.String(), "2001:389::2"))
}

func FuzzParsePool(f *testing.F) {
	for _, s := range []string{"base=10.210.0.0/16,size=24", "base=fd6b:e27a:1::/48,size=64", "size=126,base=::/0", "base=1.2.3.4/33,size=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePool(s)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: unclassified error %v", s, err)
			}
			return
		}
		if p.Base.Masked() != p.Base || p.Size < p.Base.Bits() || p.Size > maxBits(p.Is6()) {
			t.Fatalf("%q accepted as %v", s, p)
		}
		// the first subnet of a valid pool is its base
		got, err := NextSubnet([]Pool{p}, nil, p.Is6())
		if err != nil || got != netip.PrefixFrom(p.Base.Addr(), p.Size) {
			t.Fatalf("%q: first subnet %v, %v", s, got, err)
		}
	})
}
