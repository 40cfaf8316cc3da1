package network

import (
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// An attach does not set the bridge up again: that listed the bridge's
// addresses, and a listing dumps every address of the host, one link-local
// address per running container's veth. A bridge deleted behind berth's
// back is made again by the next attach.
func TestAttachDoesNotDumpAddresses(t *testing.T) {
	e := newEnv(t)
	first := e.start(t, "first")
	e.attach(t, first, "bridge", true)
	before := bridgeAddrDumps.Load()
	for i := range 4 {
		c := e.start(t, fmt.Sprintf("c%d", i))
		e.attach(t, c, "bridge", true)
	}
	assert.Check(t, is.Equal(bridgeAddrDumps.Load()-before, int64(0)), "address dumps in 4 attaches")

	l, err := netlink.LinkByName(e.cfg.Bridge)
	assert.NilError(t, err)
	assert.NilError(t, netlink.LinkDel(l))
	c := e.start(t, "after")
	es := e.attach(t, c, "bridge", true)
	l, err = netlink.LinkByName(e.cfg.Bridge)
	assert.NilError(t, err, "the bridge is made again")
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(addrs, 1))
	assert.Check(t, is.Equal(addrs[0].IP.String(), es.Gateway.String()))
}
