package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseBridgeOptions(t *testing.T) {
	def, err := parseBridgeOptions(nil)
	assert.NilError(t, err)
	assert.Check(t, def == bridgeOptions{ICC: true, Masquerade: true, HostIP: netip.IPv4Unspecified(), IfPrefix: "eth"}, "%+v", def)
	for _, tc := range []struct {
		name    string
		opts    map[string]string
		check   func(bridgeOptions) bool
		wantErr string
	}{
		{name: "icc off", opts: map[string]string{optICC: "false"}, check: func(o bridgeOptions) bool { return !o.ICC && o.Masquerade }},
		{name: "masquerade off", opts: map[string]string{optMasquerade: "0"}, check: func(o bridgeOptions) bool { return o.ICC && !o.Masquerade }},
		{name: "host binding", opts: map[string]string{optHostBinding: "127.0.0.1"}, check: func(o bridgeOptions) bool { return o.HostIP == netip.MustParseAddr("127.0.0.1") }},
		{name: "mtu", opts: map[string]string{optMTU: "1400"}, check: func(o bridgeOptions) bool { return o.MTU == 1400 }},
		{name: "prefix", opts: map[string]string{optIfPrefix: "tap"}, check: func(o bridgeOptions) bool { return o.IfPrefix == "tap" }},
		{name: "nat gateway mode, bridge name and default bridge pass", opts: map[string]string{optGatewayMode: "nat", bridgeNameOption: "x", "com.docker.network.bridge.default_bridge": "true"},
			check: func(o bridgeOptions) bool { return o.ICC }},
		{name: "bad bool", opts: map[string]string{optICC: "maybe"}, wantErr: `failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": invalid syntax)`},
		{name: "bad ip", opts: map[string]string{optHostBinding: "x"}, wantErr: "failed to parse com.docker.network.bridge.host_binding_ipv4 value: x (nil ip)"},
		{name: "ipv6 binding", opts: map[string]string{optHostBinding: "::1"}, wantErr: "an IPv4 address"},
		{name: "bad mtu", opts: map[string]string{optMTU: "9x"}, wantErr: "failed to parse com.docker.network.driver.mtu value: 9x"},
		{name: "tiny mtu", opts: map[string]string{optMTU: "10"}, wantErr: "between 68 and 65535"},
		{name: "bad prefix", opts: map[string]string{optIfPrefix: "a/b"}, wantErr: "not a valid interface name prefix"},
		{name: "routed", opts: map[string]string{optGatewayMode: "routed"}, wantErr: "nat only"},
		{name: "inhibit", opts: map[string]string{optInhibitIPv4: "true"}, wantErr: "not supported by berth"},
		{name: "ipv6 on", opts: map[string]string{"com.docker.network.enable_ipv6": "true"}, check: func(o bridgeOptions) bool { return o.ICC }},
		{name: "ipv6 not a bool", opts: map[string]string{"com.docker.network.enable_ipv6": "maybe"}, wantErr: "failed to parse"},
		{name: "ipv6 gateway mode routed", opts: map[string]string{"com.docker.network.bridge.gateway_mode_ipv6": "routed"}, wantErr: "nat only"},
		{name: "ipv6 gateway mode nat", opts: map[string]string{"com.docker.network.bridge.gateway_mode_ipv6": "nat"}, check: func(o bridgeOptions) bool { return o.ICC }},
		{name: "host_ipv4", opts: map[string]string{"com.docker.network.host_ipv4": "10.0.0.1"}, wantErr: "not supported by berth"},
		{name: "trusted interfaces", opts: map[string]string{"com.docker.network.bridge.trusted_host_interfaces": "eth0"}, wantErr: "not supported by berth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseBridgeOptions(tc.opts)
			if tc.wantErr != "" {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				assert.Check(t, is.ErrorContains(err, tc.wantErr))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, tc.check(o), "%+v", o)
		})
	}
}

func FuzzParseBridgeOptions(f *testing.F) {
	for _, s := range []string{"true", "false", "127.0.0.1", "1400", "eth", "nat", ""} {
		f.Add(optICC, s)
		f.Add(optHostBinding, s)
		f.Add(optMTU, s)
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		o, err := parseBridgeOptions(map[string]string{k: v})
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%s=%q: unclassified error %v", k, v, err)
			}
			return
		}
		if !o.HostIP.Is4() || !validIfName(o.IfPrefix+"0") || (o.MTU != 0 && (o.MTU < 68 || o.MTU > 65535)) {
			t.Fatalf("%s=%q accepted as %+v", k, v, o)
		}
	})
}

func TestAuxAddressesCheck(t *testing.T) {
	sub := netip.MustParsePrefix("10.9.0.0/24")
	gw := netip.MustParseAddr("10.9.0.1")
	got, err := auxAddresses(sub, gw, map[string]netip.Addr{"a": netip.MustParseAddr("10.9.0.2")})
	assert.NilError(t, err)
	assert.Check(t, len(got) == 1 && got["a"] == netip.MustParseAddr("10.9.0.2"), "%v", got)
	got, err = auxAddresses(sub, gw, nil)
	assert.Check(t, err == nil && got == nil)

	_, err = auxAddresses(sub, gw, map[string]netip.Addr{"x": netip.MustParseAddr("10.8.0.2")})
	assert.Check(t, errdefs.IsPermissionDenied(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "auxiliary address: (x:10.8.0.2) must belong to the master pool: 10.9.0.0/24"))
	_, err = auxAddresses(sub, gw, map[string]netip.Addr{"gw": gw})
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	_, err = auxAddresses(sub, gw, map[string]netip.Addr{"a": netip.MustParseAddr("10.9.0.5"), "b": netip.MustParseAddr("10.9.0.5")})
	assert.Check(t, is.ErrorContains(err, "Address already in use by a"))
	_, err = auxAddresses(sub, gw, map[string]netip.Addr{"v6": netip.MustParseAddr("::1")})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
}

// TestEnsureForwarding: berth sets the FORWARD policy to DROP when it turns
// forwarding on, and on later starts while its marker is there; never when
// forwarding was the admin's.
func TestEnsureForwarding(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	proc, marker := filepath.Join(dir, "ip_forward"), filepath.Join(dir, "run", "marker")
	drops := 0
	drop := func(context.Context) error { drops++; return nil }

	assert.NilError(t, os.WriteFile(proc, []byte("0\n"), 0o644))
	assert.NilError(t, ensureForwarding(ctx, proc, marker, drop))
	b, _ := os.ReadFile(proc)
	assert.Check(t, is.Equal(string(b), "1"))
	assert.Check(t, is.Equal(drops, 1))
	_, err := os.Stat(marker)
	assert.Check(t, err == nil, "%v", err)

	// a restart: forwarding is on, berth's doing
	assert.NilError(t, ensureForwarding(ctx, proc, marker, drop))
	assert.Check(t, is.Equal(drops, 2))

	// forwarding on before berth: left alone
	assert.NilError(t, os.Remove(marker))
	assert.NilError(t, ensureForwarding(ctx, proc, marker, drop))
	assert.Check(t, is.Equal(drops, 2))

	// a failing policy change is the caller's error
	assert.NilError(t, os.WriteFile(proc, []byte("0\n"), 0o644))
	err = ensureForwarding(ctx, proc, marker, func(context.Context) error { return errors.New("no iptables") })
	assert.Check(t, is.ErrorContains(err, "no iptables"))
}

// TestGatewayFollowsConnects: a container whose networks come and go keeps
// a default route through a network that is not internal whenever it has
// one: one started on an internal network gets it from the next network;
// one that lost every network gets it from the one it joins.
func TestGatewayFollowsConnects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, req := range []network.CreateRequest{{Name: "inner", Internal: true}, {Name: "outer"}, {Name: "second"}} {
		_, err := e.m.CreateNetwork(ctx, req)
		assert.NilError(t, err)
	}
	c := e.start(t, "mover")
	e.attach(t, c, "inner", true)
	assert.Check(t, is.Equal(defaultGW(t, c.ns), ""))
	outer := e.attach(t, c, "outer", false)
	assert.Check(t, is.Equal(defaultGW(t, c.ns), outer.Gateway.String()), "the internal primary gives way")
	second := e.attach(t, c, "second", false)
	assert.Check(t, is.Equal(defaultGW(t, c.ns), outer.Gateway.String()), "a route that works is kept")

	assert.NilError(t, e.m.Detach(ctx, c.id, "outer"))
	assert.Check(t, is.Equal(defaultGW(t, c.ns), second.Gateway.String()))
	assert.NilError(t, e.m.Detach(ctx, c.id, "second"))
	assert.NilError(t, e.m.Detach(ctx, c.id, "inner"))
	e.m.bg.Wait()
	assert.Check(t, is.Equal(defaultGW(t, c.ns), ""))
	back := e.attach(t, c, "second", false)
	assert.Check(t, is.Equal(defaultGW(t, c.ns), back.Gateway.String()), "joining after losing every network")
}

// TestAttachInterfaceName: the endpoint's ifname driver option names the
// interface; a bad or taken name is refused and leaves nothing.
func TestAttachInterfaceName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"one", "two"} {
		_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: n})
		assert.NilError(t, err)
	}
	c := e.start(t, "named")
	attach := func(netName, ifName string) error {
		_, err := e.m.Attach(ctx, c.ns, AttachRequest{ContainerID: c.id, ContainerName: c.name, Network: netName, Primary: netName == "one",
			DriverOpts: map[string]string{optIfName: ifName}})
		return err
	}
	assert.NilError(t, attach("one", "front0"))
	err := attach("two", "bad/name")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	err = attach("two", "front0")
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Veths, 1), "%v", inv.Veths)
	assert.Check(t, is.Equal(inv.Endpoints, 1))
	assert.NilError(t, attach("two", ""))
	var names []string
	assert.NilError(t, inNS(c.ns, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}))
	assert.Check(t, is.DeepEqual(names, []string{"lo", "front0", "eth0"}))
}
