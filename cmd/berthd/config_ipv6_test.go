package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/berthd/berth/network/ipam"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestIPv6Flags(t *testing.T) {
	c, err := parseFlags([]string{"--ipv6", "--fixed-cidr-v6", "fd6b:e27a:1:2::/64",
		"--default-address-pool", "base=10.216.0.0/20,size=24", "--default-address-pool", "base=fd6b:e27a:1::/48,size=64"})
	assert.NilError(t, err)
	nc, err := c.networkConfig()
	assert.NilError(t, err)
	assert.Check(t, nc.IPv6)
	assert.Check(t, is.Equal(nc.FixedCIDRv6, netip.MustParsePrefix("fd6b:e27a:1:2::/64")))
	assert.Check(t, slices.Equal(nc.Pools, []ipam.Pool{
		{Base: netip.MustParsePrefix("10.216.0.0/20"), Size: 24},
		{Base: netip.MustParsePrefix("fd6b:e27a:1::/48"), Size: 64},
	}), "%v", nc.Pools)

	c, err = parseFlags(nil)
	assert.NilError(t, err)
	nc, err = c.networkConfig()
	assert.NilError(t, err)
	assert.Check(t, !nc.IPv6 && !nc.FixedCIDRv6.IsValid())

	for _, bad := range []string{"10.0.0.0/24", "fd00::", "nope"} {
		c, err := parseFlags([]string{"--ipv6", "--fixed-cidr-v6", bad})
		assert.NilError(t, err)
		_, err = c.networkConfig()
		assert.Check(t, is.ErrorContains(err, "invalid fixed-cidr-v6"), bad)
	}
}

// daemon.json's ipv6 and fixed-cidr-v6 keys set what the flags set.
func TestConfigFileIPv6(t *testing.T) {
	p := writeConfig(t, `{"ipv6": true, "fixed-cidr-v6": "fd6b:e27a:1:2::/64"}`)
	c, err := parseFlags([]string{"--config-file", p})
	assert.NilError(t, err)
	assert.Check(t, c.IPv6)
	assert.Check(t, is.Equal(c.FixedCIDRv6, "fd6b:e27a:1:2::/64"))
}
