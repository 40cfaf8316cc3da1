// Package iptables owns berth's packet filter state: NAT out of each bridge,
// forwarding into and out of bridges, isolation between bridges (Docker's
// DOCKER-ISOLATION stages), and DNAT for published ports. Every rule lives in
// chains whose names carry the daemon's tag (its default bridge name), so
// several daemons share a host without touching each other or Docker.
//
// The whole rule set of a daemon is a pure function of its state (Ruleset).
// Apply writes it in one iptables-restore --noflush run, which flushes and
// refills only this daemon's chains: one exec per change, atomic, and a
// restart converges to the store without diffing rules.
package iptables

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Chains are the chain names of one daemon.
type Chains struct {
	Forward string // filter: jumped to first from FORWARD
	Iso1    string // filter: traffic leaving a bridge for elsewhere
	Iso2    string // filter: ... and entering another berth bridge: drop
	DNAT    string // nat: jumped to from PREROUTING and OUTPUT for local destinations
	Post    string // nat: jumped to from POSTROUTING (masquerade)
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
	}
}

// Bridge is one bridge network as the firewall sees it.
type Bridge struct {
	Name     string
	Subnet   netip.Prefix
	Internal bool
}

// Port is one published port.
type Port struct {
	Bridge        string
	HostIP        netip.Addr // unspecified (0.0.0.0) binds every local address
	HostPort      uint16
	Proto         string // tcp or udp
	ContainerIP   netip.Addr
	ContainerPort uint16
	Container     string // id, for the rule comment
}

// Ruleset renders the iptables-restore input for a daemon's bridges and
// ports. Bridges and ports are sorted so the output is stable.
func Ruleset(c Chains, bridges []Bridge, ports []Port) string {
	bridges = append([]Bridge(nil), bridges...)
	sort.Slice(bridges, func(i, j int) bool { return bridges[i].Name < bridges[j].Name })
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

	var f, n strings.Builder
	f.WriteString("*filter\n")
	for _, ch := range []string{c.Forward, c.Iso1, c.Iso2} {
		fmt.Fprintf(&f, ":%s - [0:0]\n", ch)
	}
	add := func(b *strings.Builder, chain string, args ...string) {
		fmt.Fprintf(b, "-A %s %s\n", chain, strings.Join(args, " "))
	}
	add(&f, c.Forward, "-j", c.Iso1)
	// a published port is reachable from every network, like from
	// anywhere else (dockerd gets there through its userland proxy)
	add(&f, c.Iso1, "-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN")
	for _, br := range bridges {
		if br.Internal {
			// no way in or out but the bridge itself (and the gateway's DNS, via INPUT)
			add(&f, c.Iso1, "-i", br.Name, "!", "-o", br.Name, "-j", "DROP")
			add(&f, c.Iso1, "-o", br.Name, "!", "-i", br.Name, "-j", "DROP")
			add(&f, c.Forward, "-i", br.Name, "-o", br.Name, "-j", "ACCEPT")
			continue
		}
		add(&f, c.Iso1, "-i", br.Name, "!", "-o", br.Name, "-j", c.Iso2)
		add(&f, c.Iso2, "-o", br.Name, "-j", "DROP")
		add(&f, c.Forward, "-o", br.Name, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		add(&f, c.Forward, "-o", br.Name, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
		add(&f, c.Forward, "-i", br.Name, "-j", "ACCEPT")
	}
	f.WriteString("COMMIT\n")

	n.WriteString("*nat\n")
	for _, ch := range []string{c.DNAT, c.Post} {
		fmt.Fprintf(&n, ":%s - [0:0]\n", ch)
	}
	for _, br := range bridges {
		if br.Internal {
			continue
		}
		add(&n, c.Post, "-s", br.Subnet.Masked().String(), "!", "-o", br.Name, "-j", "MASQUERADE")
		// published ports reached from the host itself (127.0.0.1 via
		// route_localnet, or a host address): the container must answer the
		// bridge, not a loopback source it cannot route to.
		add(&n, c.Post, "-o", br.Name, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE")
	}
	for _, p := range ports {
		for _, r := range portRules(c, p) {
			add(&n, r[0], r[1:]...)
		}
	}
	n.WriteString("COMMIT\n")
	return f.String() + n.String()
}

// portRules are the nat rules of one published port, each as chain
// followed by its arguments: the DNAT, and the hairpin masquerade for a
// container reaching its own published port.
func portRules(c Chains, p Port) [][]string {
	dnat := []string{c.DNAT}
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		dnat = append(dnat, "-d", p.HostIP.String()+"/32")
	}
	dnat = append(dnat, "-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.HostPort)),
		"-m", "comment", "--comment", "berth:"+short(p.Container),
		"-j", "DNAT", "--to-destination", netip.AddrPortFrom(p.ContainerIP, p.ContainerPort).String())
	hairpin := []string{c.Post, "-s", p.ContainerIP.String() + "/32", "-d", p.ContainerIP.String() + "/32",
		"-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.ContainerPort)), "-j", "MASQUERADE"}
	return [][]string{dnat, hairpin}
}

// portBatch is iptables-restore input that adds (op "-A") or deletes
// (op "-D") the rules of ports.
func portBatch(c Chains, op string, ports []Port) string {
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, p := range ports {
		for _, r := range portRules(c, p) {
			fmt.Fprintf(&b, "%s %s\n", op, strings.Join(r, " "))
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// jumps are the rules in built-in chains that lead into a daemon's chains.
func jumps(c Chains) []struct {
	table, chain string
	args         []string
	insert       bool
} {
	return []struct {
		table, chain string
		args         []string
		insert       bool
	}{
		{"filter", "FORWARD", []string{"-j", c.Forward}, true},
		{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", c.DNAT}, false},
		{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", c.DNAT}, false},
		{"nat", "POSTROUTING", []string{"-j", c.Post}, false},
	}
}

// Firewall applies rule sets for one daemon.
type Firewall struct {
	Chains Chains
	mu     sync.Mutex
	// jumpsOK is set once the jumps from the built-in chains are known to
	// be there; Apply checks them only until then (each check is an exec).
	jumpsOK bool
}

// New returns the firewall of the daemon tagged tag.
func New(tag string) *Firewall { return &Firewall{Chains: ChainsFor(tag)} }

// Apply replaces the contents of the daemon's chains with the rules for
// bridges and ports, creating the chains and their jumps when missing.
func (fw *Firewall) Apply(ctx context.Context, bridges []Bridge, ports []Port) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	in := Ruleset(fw.Chains, bridges, ports)
	if out, err := run(ctx, strings.NewReader(in), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s\ninput:\n%s", err, out, in)
	}
	if fw.jumpsOK {
		return nil
	}
	for _, j := range jumps(fw.Chains) {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		if _, err := run(ctx, nil, "iptables", check...); err == nil {
			continue
		}
		op := []string{"-w", "-t", j.table, "-A", j.chain}
		if j.insert {
			op = []string{"-w", "-t", j.table, "-I", j.chain, "1"}
		}
		if out, err := run(ctx, nil, "iptables", append(op, j.args...)...); err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(op, " "), err, out)
		}
	}
	fw.jumpsOK = true
	return nil
}

// AddPorts appends the rules of ports to the chains Apply made (cheaper
// than a full Apply: adding rules costs one short exec).
func (fw *Firewall) AddPorts(ctx context.Context, ports []Port) error {
	return fw.batch(ctx, "-A", ports)
}

// DeletePorts deletes the rules of ports. A rule that is missing fails the
// whole batch; callers then Apply the full set.
func (fw *Firewall) DeletePorts(ctx context.Context, ports []Port) error {
	return fw.batch(ctx, "-D", ports)
}

func (fw *Firewall) batch(ctx context.Context, op string, ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	in := portBatch(fw.Chains, op, ports)
	if out, err := run(ctx, strings.NewReader(in), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s\ninput:\n%s", err, out, in)
	}
	return nil
}

// Remove deletes the jumps and the daemon's chains. Missing ones are fine.
func (fw *Firewall) Remove(ctx context.Context) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.jumpsOK = false
	for _, j := range jumps(fw.Chains) {
		for {
			del := append([]string{"-w", "-t", j.table, "-D", j.chain}, j.args...)
			if _, err := run(ctx, nil, "iptables", del...); err != nil {
				break
			}
		}
	}
	var errs []string
	for _, tc := range [][2]string{{"filter", fw.Chains.Forward}, {"filter", fw.Chains.Iso1}, {"filter", fw.Chains.Iso2}, {"nat", fw.Chains.DNAT}, {"nat", fw.Chains.Post}} {
		if !chainExists(ctx, tc[0], tc[1]) {
			continue
		}
		_, _ = run(ctx, nil, "iptables", "-w", "-t", tc[0], "-F", tc[1])
		if out, err := run(ctx, nil, "iptables", "-w", "-t", tc[0], "-X", tc[1]); err != nil {
			errs = append(errs, fmt.Sprintf("%s/%s: %s", tc[0], tc[1], out))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove chains: %s", strings.Join(errs, "; "))
	}
	return nil
}

func chainExists(ctx context.Context, table, chain string) bool {
	_, err := run(ctx, nil, "iptables", "-w", "-t", table, "-S", chain, "1")
	return err == nil
}

// Rules lists the rules in the daemon's chains and its jumps from built-in
// chains, as iptables -S prints them ("nat: -A BERTH-DNAT-x ..."). It is the
// firewall part of the ownership report.
func (fw *Firewall) Rules(ctx context.Context) ([]string, error) {
	var out []string
	for _, tc := range [][2]string{{"filter", fw.Chains.Forward}, {"filter", fw.Chains.Iso1}, {"filter", fw.Chains.Iso2}, {"nat", fw.Chains.DNAT}, {"nat", fw.Chains.Post}} {
		if !chainExists(ctx, tc[0], tc[1]) {
			continue
		}
		s, err := run(ctx, nil, "iptables", "-w", "-t", tc[0], "-S", tc[1])
		if err != nil {
			return nil, fmt.Errorf("iptables -S %s: %v: %s", tc[1], err, s)
		}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if l != "" {
				out = append(out, tc[0]+": "+l)
			}
		}
	}
	for _, j := range jumps(fw.Chains) {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		if _, err := run(ctx, nil, "iptables", check...); err == nil {
			out = append(out, j.table+": -A "+j.chain+" "+strings.Join(j.args, " "))
		}
	}
	return out, nil
}

func run(ctx context.Context, stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}
