package iptables

import (
	"net/netip"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestChainsFor(t *testing.T) {
	c := ChainsFor("a-very-long-bridge-name")
	for _, n := range []string{c.Forward, c.Iso1, c.Iso2, c.DNAT, c.Post} {
		assert.Check(t, len(n) <= 28, n)
	}
	assert.Check(t, is.Equal(ChainsFor("berth0").DNAT, "BERTH-DNAT-berth0"))
}

func TestRuleset(t *testing.T) {
	c := ChainsFor("b0")
	got := Ruleset(c, []Bridge{
		{Name: "br-int", Subnet: netip.MustParsePrefix("10.1.2.0/24"), Internal: true},
		{Name: "b0", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
	}, []Port{
		{Bridge: "b0", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Proto: "tcp", ContainerIP: netip.MustParseAddr("10.1.0.2"), ContainerPort: 80, Container: "0123456789abcdef"},
		{Bridge: "b0", HostIP: netip.IPv4Unspecified(), HostPort: 53, Proto: "udp", ContainerIP: netip.MustParseAddr("10.1.0.3"), ContainerPort: 5353, Container: "fedcba9876543210"},
	})
	want := `*filter
:BERTH-FWD-b0 - [0:0]
:BERTH-ISO1-b0 - [0:0]
:BERTH-ISO2-b0 - [0:0]
-A BERTH-FWD-b0 -j BERTH-ISO1-b0
-A BERTH-ISO1-b0 -m conntrack --ctstate DNAT -j RETURN
-A BERTH-ISO1-b0 -i b0 ! -o b0 -j BERTH-ISO2-b0
-A BERTH-ISO2-b0 -o b0 -j DROP
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate DNAT -j ACCEPT
-A BERTH-FWD-b0 -i b0 -j ACCEPT
-A BERTH-ISO1-b0 -i br-int ! -o br-int -j DROP
-A BERTH-ISO1-b0 -o br-int ! -i br-int -j DROP
-A BERTH-FWD-b0 -i br-int -o br-int -j ACCEPT
COMMIT
*nat
:BERTH-DNAT-b0 - [0:0]
:BERTH-POST-b0 - [0:0]
-A BERTH-POST-b0 -s 10.1.0.0/24 ! -o b0 -j MASQUERADE
-A BERTH-POST-b0 -o b0 -m addrtype --src-type LOCAL -j MASQUERADE
-A BERTH-DNAT-b0 -p udp -m udp --dport 53 -m comment --comment berth:fedcba987654 -j DNAT --to-destination 10.1.0.3:5353
-A BERTH-POST-b0 -s 10.1.0.3/32 -d 10.1.0.3/32 -p udp -m udp --dport 5353 -j MASQUERADE
-A BERTH-DNAT-b0 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment berth:0123456789ab -j DNAT --to-destination 10.1.0.2:80
-A BERTH-POST-b0 -s 10.1.0.2/32 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
COMMIT
`
	assert.Check(t, is.Equal(got, want))
	// the internal network gets no NAT at all
	assert.Check(t, !strings.Contains(got, "10.1.2.0/24"))
}
