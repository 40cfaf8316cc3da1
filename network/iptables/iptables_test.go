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
	for _, tc := range c.owned() {
		assert.Check(t, len(tc[1]) <= 28, tc[1])
	}
	assert.Check(t, is.Equal(ChainsFor("berth0").DNAT, "BERTH-DNAT-berth0"))
	assert.Check(t, is.Equal(ChainsFor("berth0").Raw, "BERTH-RAW-berth0"))
}

var (
	loopbackPort = Port{Bridge: "b0", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Proto: "tcp", ContainerIP: netip.MustParseAddr("10.1.0.2"), ContainerPort: 80, Container: "0123456789abcdef"}
	anyPort      = Port{Bridge: "b0", HostIP: netip.IPv4Unspecified(), HostPort: 53, Proto: "udp", ContainerIP: netip.MustParseAddr("10.1.0.3"), ContainerPort: 5353, Container: "fedcba9876543210"}
)

func TestRuleset(t *testing.T) {
	c := ChainsFor("b0")
	got := Ruleset(c, []Bridge{
		{Name: "br-int", Subnet: netip.MustParsePrefix("10.1.2.0/24"), Internal: true},
		{Name: "b0", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
	}, []Port{loopbackPort, anyPort})
	want := `*raw
:BERTH-RAW-b0 - [0:0]
-A BERTH-RAW-b0 -i b0 -d 127.0.0.0/8 -j DROP
-A BERTH-RAW-b0 -i br-int -d 127.0.0.0/8 -j DROP
-A BERTH-RAW-b0 -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP
COMMIT
*filter
:BERTH-FWD-b0 - [0:0]
:BERTH-ISO1-b0 - [0:0]
:BERTH-ISO2-b0 - [0:0]
-A BERTH-FWD-b0 -j BERTH-ISO1-b0
-A BERTH-ISO1-b0 -m conntrack --ctstate DNAT -j RETURN
-A BERTH-ISO1-b0 -i b0 ! -o b0 -j BERTH-ISO2-b0
-A BERTH-ISO2-b0 -o b0 -j DROP
-A BERTH-FWD-b0 -i b0 -o b0 -j ACCEPT
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate DNAT -j ACCEPT
-A BERTH-FWD-b0 -o b0 -j DROP
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

// TestRulesetOptions: the bridge options change exactly their rules.
func TestRulesetOptions(t *testing.T) {
	c := ChainsFor("b0")
	sub := netip.MustParsePrefix("10.1.0.0/24")
	for _, tc := range []struct {
		name          string
		br            Bridge
		want, wantNot []string
	}{
		{
			name:    "defaults",
			br:      Bridge{Name: "b0", Subnet: sub},
			want:    []string{"-A BERTH-FWD-b0 -i b0 -o b0 -j ACCEPT", "-A BERTH-POST-b0 -s 10.1.0.0/24 ! -o b0 -j MASQUERADE"},
			wantNot: []string{"-i b0 -o b0 -j DROP"},
		},
		{
			name:    "no icc",
			br:      Bridge{Name: "b0", Subnet: sub, DisableICC: true},
			want:    []string{"-A BERTH-FWD-b0 -i b0 -o b0 -j DROP", "-A BERTH-POST-b0 -s 10.1.0.0/24 ! -o b0 -j MASQUERADE"},
			wantNot: []string{"-i b0 -o b0 -j ACCEPT"},
		},
		{
			name:    "no icc, internal",
			br:      Bridge{Name: "b0", Subnet: sub, Internal: true, DisableICC: true},
			want:    []string{"-A BERTH-FWD-b0 -i b0 -o b0 -j DROP"},
			wantNot: []string{"-i b0 -o b0 -j ACCEPT", "MASQUERADE"},
		},
		{
			name: "no masquerade",
			br:   Bridge{Name: "b0", Subnet: sub, DisableMasquerade: true},
			// the host still reaches published ports through the bridge
			want:    []string{"-A BERTH-POST-b0 -o b0 -m addrtype --src-type LOCAL -j MASQUERADE", "-A BERTH-FWD-b0 -i b0 -j ACCEPT"},
			wantNot: []string{"-s 10.1.0.0/24 ! -o b0 -j MASQUERADE"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Ruleset(c, []Bridge{tc.br}, nil)
			for _, w := range tc.want {
				assert.Check(t, is.Contains(got, w+"\n"))
			}
			for _, w := range tc.wantNot {
				assert.Check(t, !strings.Contains(got, w), "%q in\n%s", w, got)
			}
		})
	}
}

// TestPortBatch: a loopback port's raw drop goes in before its DNAT and
// comes out after it; other ports have no raw rule.
func TestPortBatch(t *testing.T) {
	c := ChainsFor("b0")
	add := portBatch(ipv4, c, "-A", []Port{anyPort, loopbackPort})
	assert.Check(t, strings.Index(add, "*raw") < strings.Index(add, "*nat"), add)
	assert.Check(t, is.Equal(strings.Count(add, "-j DROP"), 1), add)
	assert.Check(t, is.Contains(add, "-A BERTH-RAW-b0 -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP\n"))
	del := portBatch(ipv4, c, "-D", []Port{loopbackPort})
	assert.Check(t, strings.Index(del, "*nat") < strings.Index(del, "*raw"), del)
	assert.Check(t, is.Contains(del, "-D BERTH-RAW-b0 -d 127.0.0.1/32 ! -i lo"))

	only := portBatch(ipv4, c, "-A", []Port{anyPort})
	assert.Check(t, !strings.Contains(only, "*raw"), only)
	// 127.0.0.2 is loopback too
	p := loopbackPort
	p.HostIP = netip.MustParseAddr("127.0.0.2")
	assert.Check(t, is.Contains(portBatch(ipv4, c, "-A", []Port{p}), "-d 127.0.0.2/32 ! -i lo"))
}

var (
	v6Loopback = Port{Bridge: "b6", HostIP: netip.IPv6Loopback(), HostPort: 8080, Proto: "tcp", ContainerIP: netip.MustParseAddr("fd00:1::2"), ContainerPort: 80, Container: "0123456789abcdef"}
	v6Any      = Port{Bridge: "b6", HostIP: netip.IPv6Unspecified(), HostPort: 9090, Proto: "tcp", ContainerIP: netip.MustParseAddr("fd00:1::2"), ContainerPort: 80, Container: "0123456789abcdef"}
	v6Addr     = Port{Bridge: "b6", HostIP: netip.MustParseAddr("fd00:9::1"), HostPort: 53, Proto: "udp", ContainerIP: netip.MustParseAddr("fd00:1::3"), ContainerPort: 53, Container: "fedcba9876543210"}
)

// TestRuleset6: ip6tables gets the IPv4 rules' shape for IPv6 subnets and
// ports; the IPv4 rules do not see them.
func TestRuleset6(t *testing.T) {
	c := ChainsFor("b0")
	bridges := []Bridge{
		{Name: "b0", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{Name: "b6", Subnet: netip.MustParsePrefix("10.1.1.0/24"), Subnet6: netip.MustParsePrefix("fd00:1::/64")},
		{Name: "only6", Subnet6: netip.MustParsePrefix("fd00:2::/64"), DisableMasquerade: true},
	}
	ports := []Port{anyPort, v6Loopback, v6Any, v6Addr}
	got := Ruleset6(c, bridges, ports)
	want := `*raw
:BERTH-RAW-b0 - [0:0]
-A BERTH-RAW-b0 -i b0 -d ::1/128 -j DROP
-A BERTH-RAW-b0 -i b6 -d ::1/128 -j DROP
-A BERTH-RAW-b0 -i only6 -d ::1/128 -j DROP
-A BERTH-RAW-b0 -d ::1/128 ! -i lo -p tcp -m tcp --dport 8080 -j DROP
COMMIT
*filter
:BERTH-FWD-b0 - [0:0]
:BERTH-ISO1-b0 - [0:0]
:BERTH-ISO2-b0 - [0:0]
-A BERTH-FWD-b0 -j BERTH-ISO1-b0
-A BERTH-ISO1-b0 -m conntrack --ctstate DNAT -j RETURN
-A BERTH-ISO1-b0 -i b0 ! -o b0 -j BERTH-ISO2-b0
-A BERTH-ISO2-b0 -o b0 -j DROP
-A BERTH-FWD-b0 -i b0 -o b0 -j ACCEPT
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FWD-b0 -o b0 -m conntrack --ctstate DNAT -j ACCEPT
-A BERTH-FWD-b0 -o b0 -j DROP
-A BERTH-FWD-b0 -i b0 -j ACCEPT
-A BERTH-ISO1-b0 -i b6 ! -o b6 -j BERTH-ISO2-b0
-A BERTH-ISO2-b0 -o b6 -j DROP
-A BERTH-FWD-b0 -i b6 -o b6 -j ACCEPT
-A BERTH-FWD-b0 -o b6 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FWD-b0 -o b6 -m conntrack --ctstate DNAT -j ACCEPT
-A BERTH-FWD-b0 -o b6 -j DROP
-A BERTH-FWD-b0 -i b6 -j ACCEPT
-A BERTH-ISO1-b0 -i only6 ! -o only6 -j BERTH-ISO2-b0
-A BERTH-ISO2-b0 -o only6 -j DROP
-A BERTH-FWD-b0 -i only6 -o only6 -j ACCEPT
-A BERTH-FWD-b0 -o only6 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FWD-b0 -o only6 -m conntrack --ctstate DNAT -j ACCEPT
-A BERTH-FWD-b0 -o only6 -j DROP
-A BERTH-FWD-b0 -i only6 -j ACCEPT
COMMIT
*nat
:BERTH-DNAT-b0 - [0:0]
:BERTH-POST-b0 - [0:0]
-A BERTH-POST-b0 -s fd00:1::/64 ! -o b6 -j MASQUERADE
-A BERTH-POST-b0 -o b6 -m addrtype --src-type LOCAL -j MASQUERADE
-A BERTH-POST-b0 -o only6 -m addrtype --src-type LOCAL -j MASQUERADE
-A BERTH-DNAT-b0 -d fd00:9::1/128 -p udp -m udp --dport 53 -m comment --comment berth:fedcba987654 -j DNAT --to-destination [fd00:1::3]:53
-A BERTH-POST-b0 -s fd00:1::3/128 -d fd00:1::3/128 -p udp -m udp --dport 53 -j MASQUERADE
-A BERTH-DNAT-b0 ! -d ::1/128 -p tcp -m tcp --dport 9090 -m comment --comment berth:0123456789ab -j DNAT --to-destination [fd00:1::2]:80
-A BERTH-POST-b0 -s fd00:1::2/128 -d fd00:1::2/128 -p tcp -m tcp --dport 80 -j MASQUERADE
COMMIT
`
	assert.Check(t, is.Equal(got, want))

	// the IPv4 rules: every bridge filtered, no IPv6 port or subnet, and the
	// IPv6-only bridge gets no IPv4 NAT
	v4 := Ruleset(c, bridges, ports)
	assert.Check(t, !strings.Contains(v4, "fd00:"), v4)
	assert.Check(t, is.Contains(v4, "-A BERTH-RAW-b0 -i only6 -d 127.0.0.0/8 -j DROP\n"))
	assert.Check(t, is.Contains(v4, "-A BERTH-ISO2-b0 -o only6 -j DROP\n"))
	assert.Check(t, !strings.Contains(v4, "-o only6 -m addrtype"), v4)
	assert.Check(t, is.Equal(strings.Count(v4, "-j DNAT"), 1), v4)
}

// TestPortBatch6: IPv6 ports go to ip6tables only; a ::1 port is a raw drop
// alone (the held socket forwards it).
func TestPortBatch6(t *testing.T) {
	c := ChainsFor("b0")
	ports := []Port{anyPort, v6Loopback, v6Any}
	v4 := portBatch(ipv4, c, "-A", ports)
	assert.Check(t, !strings.Contains(v4, "::"), v4)
	assert.Check(t, is.Equal(strings.Count(v4, "-j DNAT"), 1), v4)
	v6 := portBatch(ipv6, c, "-A", ports)
	assert.Check(t, is.Equal(strings.Count(v6, "-j DNAT"), 1), v6)
	assert.Check(t, is.Contains(v6, "-A BERTH-RAW-b0 -d ::1/128 ! -i lo -p tcp -m tcp --dport 8080 -j DROP\n"))
	assert.Check(t, is.Contains(v6, "-A BERTH-DNAT-b0 ! -d ::1/128 -p tcp -m tcp --dport 9090"))
	only := portBatch(ipv6, c, "-D", []Port{v6Loopback})
	assert.Check(t, !strings.Contains(only, "*nat"), only)
	assert.Check(t, is.Equal(portBatch(ipv6, c, "-A", []Port{anyPort}), ""))
}
