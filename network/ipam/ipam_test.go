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
		{in: "base=fd00::/64,size=80", err: true},
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
			got, err := NextSubnet(pools, tc.used)
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
		{"v6", p("fd00::/64"), netip.Prefix{}, a("fd00::1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSubnet(tc.subnet, tc.rng, tc.gateway)
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
		})
	}
}
