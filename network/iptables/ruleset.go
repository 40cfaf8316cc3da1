package iptables

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// UserChain is the filter chain that FORWARD jumps to before any berth
// chain (Docker's DOCKER-USER): admins put their own rules there, for
// example to limit who reaches a published port. It is shared by every
// daemon on the host, created when missing and never flushed or removed by
// berth, so its rules survive daemon restarts.
const UserChain = "BERTH-USER"

// Chains are the chain names of one daemon.
type Chains struct {
	Forward string // filter: jumped to from FORWARD, right after UserChain
	Iso1    string // filter: traffic leaving a bridge for elsewhere
	Iso2    string // filter: ... and entering another berth bridge: drop
	DNAT    string // nat: jumped to from PREROUTING and OUTPUT for local destinations
	Post    string // nat: jumped to from POSTROUTING (masquerade)
	Raw     string // raw: jumped to from PREROUTING (loopback spoofing drops)
}

// ChainsFor derives the chain names from tag (the default bridge name, which
// is unique per daemon on a host). iptables allows 28 characters.
func ChainsFor(tag string) Chains {
	if len(tag) > 15 {
		tag = tag[:15]
	}
	return Chains{
		Forward: "BERTH-FWD-" + tag,
		Iso1:    "BERTH-ISO1-" + tag,
		Iso2:    "BERTH-ISO2-" + tag,
		DNAT:    "BERTH-DNAT-" + tag,
		Post:    "BERTH-POST-" + tag,
		Raw:     "BERTH-RAW-" + tag,
	}
}

// owned are the daemon's chains by table.
func (c Chains) owned() [][2]string {
	return [][2]string{{"raw", c.Raw}, {"filter", c.Forward}, {"filter", c.Iso1}, {"filter", c.Iso2}, {"nat", c.DNAT}, {"nat", c.Post}}
}

// family is what differs between the iptables and ip6tables rules of a
// daemon: the rule sets have the same shape.
type family struct {
	v6       bool
	loopback string // the loopback block
	hostBits int    // the prefix length of one address
}

var (
	ipv4 = family{loopback: "127.0.0.0/8", hostBits: 32}
	ipv6 = family{v6: true, loopback: "::1/128", hostBits: 128}
)

func (f family) host(a netip.Addr) string { return netip.PrefixFrom(a, f.hostBits).String() }

func (f family) subnet(br Bridge) netip.Prefix {
	if f.v6 {
		return br.Subnet6
	}
	return br.Subnet
}

// Bridge is one bridge network as the firewall sees it.
type Bridge struct {
	Name string
	// Subnet is the IPv4 subnet; Subnet6 the IPv6 one. Either is the zero
	// Prefix when the network has no addresses of that family.
	Subnet, Subnet6 netip.Prefix
	Internal        bool
	// DisableICC drops traffic between the bridge's containers
	// (com.docker.network.bridge.enable_icc=false).
	DisableICC bool
	// DisableMasquerade leaves traffic from the bridge to elsewhere with
	// the containers' addresses (enable_ip_masquerade=false).
	DisableMasquerade bool
}

// Port is one published port. Its family is HostIP's: an IPv6 port is
// DNATed by ip6tables to an IPv6 ContainerIP.
type Port struct {
	Bridge        string
	HostIP        netip.Addr // unspecified (0.0.0.0, ::) binds every local address of its family
	HostPort      uint16
	Proto         string // tcp or udp
	ContainerIP   netip.Addr
	ContainerPort uint16
	Container     string // id, for the rule comment
}

// Ruleset renders the iptables-restore input for a daemon's bridges and
// ports. Bridges and ports are sorted so the output is stable.
//
// The filter rules let into a bridge only what answers its containers'
// own connections and what a published port DNATed, and drop the rest
// (Docker 28's DOCKER chain does the same): a host on the LAN that routes
// a container's subnet through this host reaches no unpublished port, and
// no port published on 127.0.0.1 by the container's address. This holds
// whatever the FORWARD policy is.
//
// Every bridge is in the filter and raw rules (a bridge without an address
// of the family still must not forward it elsewhere); NAT is for bridges
// with a subnet of the family only.
//
// The raw rules drop what asks for 127.0.0.0/8 from where loopback traffic
// never comes: from a bridge (route_localnet is on there for published
// ports, so a container with CAP_NET_RAW could otherwise reach the host's
// 127.0.0.1 services, CVE-2020-8558), and from any interface but lo for a
// port published on a loopback address (a LAN host that sends to
// 127.0.0.1 would be DNATed to the container).
func Ruleset(c Chains, bridges []Bridge, ports []Port) string {
	return ruleset(ipv4, c, bridges, ports)
}

// Ruleset6 is Ruleset for ip6tables-restore: the same rules for the IPv6
// subnets and ports. Ports published on ::1 get no DNAT (the kernel drops
// the container's answers to a loopback source that came in on a bridge,
// and IPv6 has no route_localnet): the socket that holds the port forwards
// them in user space (package portmap); ports published on :: leave ::1
// to that socket likewise.
func Ruleset6(c Chains, bridges []Bridge, ports []Port) string {
	return ruleset(ipv6, c, bridges, ports)
}

func ruleset(fam family, c Chains, bridges []Bridge, ports []Port) string {
	bridges = append([]Bridge(nil), bridges...)
	sort.Slice(bridges, func(i, j int) bool { return bridges[i].Name < bridges[j].Name })
	ports = sortedPorts(familyPorts(fam, ports))

	var r, f, n strings.Builder
	r.WriteString("*raw\n")
	fmt.Fprintf(&r, ":%s - [0:0]\n", c.Raw)
	for _, br := range bridges {
		add(&r, c.Raw, "-i", br.Name, "-d", fam.loopback, "-j", "DROP")
	}
	for _, p := range ports {
		if rule := loopbackRule(fam, c, p); rule != nil {
			add(&r, rule[0], rule[1:]...)
		}
	}
	r.WriteString("COMMIT\n")

	f.WriteString("*filter\n")
	for _, ch := range []string{c.Forward, c.Iso1, c.Iso2} {
		fmt.Fprintf(&f, ":%s - [0:0]\n", ch)
	}
	add(&f, c.Forward, "-j", c.Iso1)
	// a published port is reachable from every network, like from
	// anywhere else (dockerd gets there through its userland proxy)
	add(&f, c.Iso1, "-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN")
	for _, br := range bridges {
		icc := "ACCEPT"
		if br.DisableICC {
			icc = "DROP"
		}
		if br.Internal {
			// no way in or out but the bridge itself (and the gateway's DNS, via INPUT)
			add(&f, c.Iso1, "-i", br.Name, "!", "-o", br.Name, "-j", "DROP")
			add(&f, c.Iso1, "-o", br.Name, "!", "-i", br.Name, "-j", "DROP")
			add(&f, c.Forward, "-i", br.Name, "-o", br.Name, "-j", icc)
			continue
		}
		add(&f, c.Iso1, "-i", br.Name, "!", "-o", br.Name, "-j", c.Iso2)
		add(&f, c.Iso2, "-o", br.Name, "-j", "DROP")
		add(&f, c.Forward, "-i", br.Name, "-o", br.Name, "-j", icc)
		add(&f, c.Forward, "-o", br.Name, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		add(&f, c.Forward, "-o", br.Name, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
		add(&f, c.Forward, "-o", br.Name, "-j", "DROP")
		add(&f, c.Forward, "-i", br.Name, "-j", "ACCEPT")
	}
	f.WriteString("COMMIT\n")

	n.WriteString("*nat\n")
	for _, ch := range []string{c.DNAT, c.Post} {
		fmt.Fprintf(&n, ":%s - [0:0]\n", ch)
	}
	for _, br := range bridges {
		sub := fam.subnet(br)
		if br.Internal || !sub.IsValid() {
			continue
		}
		if !br.DisableMasquerade {
			add(&n, c.Post, "-s", sub.Masked().String(), "!", "-o", br.Name, "-j", "MASQUERADE")
		}
		// published ports reached from the host itself (127.0.0.1 via
		// route_localnet, or a host address): the container must answer the
		// bridge, not a loopback source it cannot route to.
		add(&n, c.Post, "-o", br.Name, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE")
	}
	for _, p := range ports {
		for _, rule := range portRules(fam, c, p) {
			add(&n, rule[0], rule[1:]...)
		}
	}
	n.WriteString("COMMIT\n")
	return r.String() + f.String() + n.String()
}

func add(b *strings.Builder, chain string, args ...string) {
	fmt.Fprintf(b, "-A %s %s\n", chain, strings.Join(args, " "))
}

func sortedPorts(ports []Port) []Port {
	ports = append([]Port(nil), ports...)
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		return a.HostIP.Less(b.HostIP)
	})
	return ports
}

// familyPorts are the ports of fam (an IPv6 HostIP, :: included, is
// ip6tables').
func familyPorts(fam family, ports []Port) []Port {
	var out []Port
	for _, p := range ports {
		if isV6(p) == fam.v6 {
			out = append(out, p)
		}
	}
	return out
}

func isV6(p Port) bool { return p.HostIP.IsValid() && p.HostIP.Unmap().Is6() }

// portRules are the nat rules of one published port, each as chain
// followed by its arguments: the DNAT, and the hairpin masquerade for a
// container reaching its own published port. An IPv6 port on ::1 has none
// (see Ruleset6); one on :: is not DNATed for ::1.
func portRules(fam family, c Chains, p Port) [][]string {
	if fam.v6 && p.HostIP.IsLoopback() {
		return nil
	}
	dnat := []string{c.DNAT}
	switch {
	case p.HostIP.IsValid() && !p.HostIP.IsUnspecified():
		dnat = append(dnat, "-d", fam.host(p.HostIP))
	case fam.v6:
		dnat = append(dnat, "!", "-d", fam.loopback)
	}
	dnat = append(dnat, "-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.HostPort)),
		"-m", "comment", "--comment", "berth:"+short(p.Container),
		"-j", "DNAT", "--to-destination", netip.AddrPortFrom(p.ContainerIP, p.ContainerPort).String())
	hairpin := []string{c.Post, "-s", fam.host(p.ContainerIP), "-d", fam.host(p.ContainerIP),
		"-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.ContainerPort)), "-j", "MASQUERADE"}
	return [][]string{dnat, hairpin}
}

// loopbackRule is the raw rule of a port published on a loopback address:
// only the host itself may use it. nil for other ports.
func loopbackRule(fam family, c Chains, p Port) []string {
	if !p.HostIP.IsLoopback() {
		return nil
	}
	return []string{c.Raw, "-d", fam.host(p.HostIP), "!", "-i", "lo",
		"-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.HostPort)), "-j", "DROP"}
}

// portBatch is iptables-restore input that adds (op "-A") or deletes
// (op "-D") the rules of ports of fam. The tables are committed one by one,
// so a loopback port's drop rule goes in before its DNAT and comes out
// after. "" when there is nothing to do.
func portBatch(fam family, c Chains, op string, ports []Port) string {
	var raw, nat strings.Builder
	for _, p := range familyPorts(fam, ports) {
		if r := loopbackRule(fam, c, p); r != nil {
			fmt.Fprintf(&raw, "%s %s\n", op, strings.Join(r, " "))
		}
		for _, r := range portRules(fam, c, p) {
			fmt.Fprintf(&nat, "%s %s\n", op, strings.Join(r, " "))
		}
	}
	if raw.Len() == 0 && nat.Len() == 0 {
		return ""
	}
	rawT := ""
	if raw.Len() > 0 {
		rawT = "*raw\n" + raw.String() + "COMMIT\n"
	}
	natT := ""
	if nat.Len() > 0 {
		natT = "*nat\n" + nat.String() + "COMMIT\n"
	}
	if op == "-D" {
		return natT + rawT
	}
	return rawT + natT
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
