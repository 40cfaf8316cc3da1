package network

import (
	"context"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// defaultGW is the gateway of the sandbox's default route ("" for none).
func defaultGW(t *testing.T, nsPath string) string {
	t.Helper()
	var gw string
	assert.NilError(t, inNS(nsPath, func() error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw != nil {
				gw = r.Gw.String()
			}
		}
		return nil
	}))
	return gw
}

// TestDetachPrimaryMovesDefaultRoute: a container that leaves its primary
// network gets its default route through the remaining network that is not
// internal, first by name, as dockerd moves the default gateway.
func TestDetachPrimaryMovesDefaultRoute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, req := range []network.CreateRequest{{Name: "zeta"}, {Name: "beta"}, {Name: "alpha", Internal: true}} {
		_, err := e.m.CreateNetwork(ctx, req)
		assert.NilError(t, err)
	}
	c := e.start(t, "mover")
	zeta := e.attach(t, c, "zeta", true)
	e.attach(t, c, "alpha", false)
	beta := e.attach(t, c, "beta", false)
	assert.Check(t, is.Equal(defaultGW(t, c.ns), zeta.Gateway.String()))

	// a secondary network leaving changes nothing
	other := e.start(t, "other")
	e.attach(t, other, "zeta", true)
	e.attach(t, other, "beta", false)
	assert.NilError(t, e.m.Detach(ctx, other.id, "beta"))
	assert.Check(t, is.Equal(defaultGW(t, other.ns), zeta.Gateway.String()))

	assert.NilError(t, e.m.Detach(ctx, c.id, "zeta"))
	assert.Check(t, is.Equal(defaultGW(t, c.ns), beta.Gateway.String()), "not through the internal alpha, though first by name")

	// the promotion is stored: a restarted manager keeps it
	e.m.mu.Lock()
	ep := e.m.endpoints[epKey(beta.NetworkID, c.id)]
	e.m.mu.Unlock()
	assert.Assert(t, ep != nil)
	assert.Check(t, ep.Primary)
	stored, err := e.m.eps.Get(epKey(beta.NetworkID, c.id))
	assert.NilError(t, err)
	assert.Check(t, stored.Primary)

	// the last network that has a way out goes: on-link routes only
	assert.NilError(t, e.m.Detach(ctx, c.id, "beta"))
	e.m.bg.Wait() // the veth, and the route through it, go in the background
	assert.Check(t, is.Equal(defaultGW(t, c.ns), ""))
}
