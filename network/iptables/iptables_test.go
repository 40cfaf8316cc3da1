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
	add := portBatch(c, "-A", []Port{anyPort, loopbackPort})
	assert.Check(t, strings.Index(add, "*raw") < strings.Index(add, "*nat"), add)
	assert.Check(t, is.Equal(strings.Count(add, "-j DROP"), 1), add)
	assert.Check(t, is.Contains(add, "-A BERTH-RAW-b0 -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP\n"))
	del := portBatch(c, "-D", []Port{loopbackPort})
	assert.Check(t, strings.Index(del, "*nat") < strings.Index(del, "*raw"), del)
	assert.Check(t, is.Contains(del, "-D BERTH-RAW-b0 -d 127.0.0.1/32 ! -i lo"))

	only := portBatch(c, "-A", []Port{anyPort})
	assert.Check(t, !strings.Contains(only, "*raw"), only)
	// 127.0.0.2 is loopback too
	p := loopbackPort
	p.HostIP = netip.MustParseAddr("127.0.0.2")
	assert.Check(t, is.Contains(portBatch(c, "-A", []Port{p}), "-d 127.0.0.2/32 ! -i lo"))
}
