package runtime

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestHostsFileIPv6: a container on an IPv6 network finds its own name at
// its IPv6 address too, after the IPv4 one, as dockerd writes it; on an
// IPv6-only network at the IPv6 address alone.
func TestHostsFileIPv6(t *testing.T) {
	h := newHarness(t)
	rec := &Record{
		Config:     &container.Config{Hostname: "h"},
		HostConfig: &container.HostConfig{NetworkMode: "dual"},
		Networks:   map[string]*network.EndpointSettings{"dual": {}},
		Endpoints: map[string]*network.EndpointSettings{"dual": {
			IPAddress: netip.MustParseAddr("10.0.0.5"), GlobalIPv6Address: netip.MustParseAddr("fd00:1::5"),
		}},
	}
	got, err := h.s.hostsFile(rec, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(got), "10.0.0.5\th\nfd00:1::5\th\n"))

	rec.Endpoints["dual"].IPAddress = netip.Addr{}
	got, err = h.s.hostsFile(rec, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(got), "\nfd00:1::5\th\n"))
	assert.Check(t, !strings.Contains(string(got), "invalid"), "%s", got)
}
