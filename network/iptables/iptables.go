// Package iptables owns berth's packet filter state: NAT out of each bridge,
// forwarding into and out of bridges, isolation between bridges (Docker's
// DOCKER-ISOLATION stages), DNAT for published ports, and drops of spoofed
// loopback traffic. Every rule lives in chains whose names carry the
// daemon's tag (its default bridge name), so several daemons share a host
// without touching each other or Docker. The one shared chain is
// BERTH-USER, the admins' (Docker's DOCKER-USER).
//
// The whole rule set of a daemon is a pure function of its state (Ruleset).
// Apply writes it in one iptables-restore --noflush run, which flushes and
// refills only this daemon's chains: one exec per change, atomic, and a
// restart converges to the store without diffing rules.
//
// IPv6 gets the same chains and rules from ip6tables (Ruleset6), written
// only once the daemon has an IPv6 network (or found its IPv6 chains from an
// earlier run): an IPv4-only daemon leaves ip6tables alone.
package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jump is a rule in a built-in chain that leads into a daemon's chain.
type jump struct {
	table, chain string
	args         []string
	first        bool // inserted at the top (after UserChain in FORWARD)
}

// jumps are the rules in built-in chains that lead into a daemon's chains.
func jumps(c Chains) []jump {
	return []jump{
		{"raw", "PREROUTING", []string{"-j", c.Raw}, true},
		{"filter", "FORWARD", []string{"-j", c.Forward}, true},
		{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", c.DNAT}, false},
		{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", c.DNAT}, false},
		{"nat", "POSTROUTING", []string{"-j", c.Post}, false},
	}
}

// tool is iptables or ip6tables.
func (f family) tool() string {
	if f.v6 {
		return "ip6tables"
	}
	return "iptables"
}

// Firewall applies rule sets for one daemon.
type Firewall struct {
	Chains Chains
	mu     sync.Mutex
	// jumpsOK is set once the jumps from the built-in chains are known to
	// be there; Apply checks them only until then (each check is an exec).
	jumpsOK bool
	// v6 is set once the IPv6 rules are written (or were found from an
	// earlier run); from then on every Apply writes them. v6Checked says
	// whether ip6tables was looked at for an earlier run's chains.
	v6, v6Checked, jumps6OK bool
}

// New returns the firewall of the daemon tagged tag.
func New(tag string) *Firewall { return &Firewall{Chains: ChainsFor(tag)} }

// Apply replaces the contents of the daemon's chains with the rules for
// bridges and ports, creating the chains and their jumps when missing, and
// UserChain with its jump at the top of FORWARD. The IPv6 rules are written
// too once a bridge has an IPv6 subnet or a port is IPv6 (see the package
// doc).
func (fw *Firewall) Apply(ctx context.Context, bridges []Bridge, ports []Port) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.applyFamily(ctx, ipv4, bridges, ports, &fw.jumpsOK); err != nil {
		return err
	}
	if !fw.v6Checked {
		fw.v6Checked = true
		fw.v6 = fw.v6 || chainExists(ctx, ipv6, "filter", fw.Chains.Forward)
	}
	for _, br := range bridges {
		fw.v6 = fw.v6 || br.Subnet6.IsValid()
	}
	fw.v6 = fw.v6 || len(familyPorts(ipv6, ports)) > 0
	if !fw.v6 {
		return nil
	}
	return fw.applyFamily(ctx, ipv6, bridges, ports, &fw.jumps6OK)
}

func (fw *Firewall) applyFamily(ctx context.Context, fam family, bridges []Bridge, ports []Port, jumpsOK *bool) error {
	in := ruleset(fam, fw.Chains, bridges, ports)
	if out, err := run(ctx, strings.NewReader(in), fam.tool()+"-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("%s-restore: %v: %s\ninput:\n%s", fam.tool(), err, out, in)
	}
	if *jumpsOK {
		return nil
	}
	// other daemons put their jumps into the same built-in chains, and
	// the FORWARD jump's place is BERTH-USER's plus one: one at a time
	unlock := lockJumps()
	defer unlock()
	if err := ensureUserChain(ctx, fam); err != nil {
		return err
	}
	for _, j := range jumps(fw.Chains) {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		if _, err := run(ctx, nil, fam.tool(), check...); err == nil {
			continue
		}
		op := []string{"-w", "-t", j.table, "-A", j.chain}
		if j.first {
			pos := "1"
			if j.table == "filter" && j.chain == "FORWARD" {
				pos = "2" // ensureUserChain put BERTH-USER's jump first
			}
			op = []string{"-w", "-t", j.table, "-I", j.chain, pos}
		}
		if out, err := run(ctx, nil, fam.tool(), append(op, j.args...)...); err != nil {
			return fmt.Errorf("%s %s: %v: %s", fam.tool(), strings.Join(op, " "), err, out)
		}
	}
	*jumpsOK = true
	return nil
}

// JumpsLock is the file whose lock (flock) every berthd on the host holds
// while it puts its jumps into the built-in chains. Without it, a daemon
// that finds BERTH-USER's jump not first (an empty FORWARD: two starting
// together) deletes and inserts it again while another inserts its own
// jump at rule 2, which for that moment does not exist ("Index of
// insertion too big"), and two may both insert BERTH-USER's jump.
var JumpsLock = "/run/berth-iptables.lock"

// lockJumps takes JumpsLock; without the file (a read-only /run) it goes
// on unlocked.
func lockJumps() (unlock func()) {
	f, err := os.OpenFile(JumpsLock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() } // closing releases the lock
}

// ensureUserChain creates UserChain when missing (leaving its rules alone)
// and makes its jump the first rule of FORWARD, so the admins' rules see
// forwarded traffic before any berth chain decides on it.
func ensureUserChain(ctx context.Context, fam family) error {
	tool := fam.tool()
	if !chainExists(ctx, fam, "filter", UserChain) {
		if out, err := run(ctx, nil, tool, "-w", "-t", "filter", "-N", UserChain); err != nil && !chainExists(ctx, fam, "filter", UserChain) {
			return fmt.Errorf("%s -N %s: %v: %s", tool, UserChain, err, out)
		}
	}
	if first, err := run(ctx, nil, tool, "-w", "-t", "filter", "-S", "FORWARD", "1"); err == nil &&
		strings.TrimSpace(first) == "-A FORWARD -j "+UserChain {
		return nil
	}
	for {
		if _, err := run(ctx, nil, tool, "-w", "-t", "filter", "-D", "FORWARD", "-j", UserChain); err != nil {
			break
		}
	}
	if out, err := run(ctx, nil, tool, "-w", "-t", "filter", "-I", "FORWARD", "1", "-j", UserChain); err != nil {
		return fmt.Errorf("%s -I FORWARD 1 -j %s: %v: %s", tool, UserChain, err, out)
	}
	return nil
}

// DropForwarding sets the policy of the FORWARD chain to DROP, as dockerd
// does when it turns IP forwarding on: the host then routes nothing that
// no rule allows. The policy is host-wide and stays when berthd stops.
func DropForwarding(ctx context.Context) error { return dropForwarding(ctx, ipv4) }

// DropForwarding6 is DropForwarding for ip6tables, for when berthd turns
// IPv6 forwarding on.
func DropForwarding6(ctx context.Context) error { return dropForwarding(ctx, ipv6) }

func dropForwarding(ctx context.Context, fam family) error {
	if out, err := run(ctx, nil, fam.tool(), "-w", "-t", "filter", "-P", "FORWARD", "DROP"); err != nil {
		return fmt.Errorf("%s -P FORWARD DROP: %v: %s", fam.tool(), err, out)
	}
	return nil
}

// AddPorts appends the rules of ports to the chains Apply made (cheaper
// than a full Apply: adding rules costs one short exec per family).
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
	for _, fam := range []family{ipv4, ipv6} {
		in := portBatch(fam, fw.Chains, op, ports)
		if in == "" {
			continue
		}
		if out, err := run(ctx, strings.NewReader(in), fam.tool()+"-restore", "-w", "--noflush"); err != nil {
			return fmt.Errorf("%s-restore: %v: %s\ninput:\n%s", fam.tool(), err, out, in)
		}
	}
	return nil
}

// Remove deletes the jumps and the daemon's chains, of both families.
// Missing ones are fine. UserChain stays: its rules are the admins'.
func (fw *Firewall) Remove(ctx context.Context) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.jumpsOK, fw.jumps6OK, fw.v6, fw.v6Checked = false, false, false, false
	var errs []string
	for _, fam := range []family{ipv4, ipv6} {
		if fam.v6 && !chainExists(ctx, fam, "filter", fw.Chains.Forward) && !fw.anyJump(ctx, fam) {
			continue // an IPv4-only daemon: nothing of it in ip6tables
		}
		for _, j := range jumps(fw.Chains) {
			for {
				del := append([]string{"-w", "-t", j.table, "-D", j.chain}, j.args...)
				if _, err := run(ctx, nil, fam.tool(), del...); err != nil {
					break
				}
			}
		}
		for _, tc := range fw.Chains.owned() {
			if !chainExists(ctx, fam, tc[0], tc[1]) {
				continue
			}
			_, _ = run(ctx, nil, fam.tool(), "-w", "-t", tc[0], "-F", tc[1])
			if out, err := run(ctx, nil, fam.tool(), "-w", "-t", tc[0], "-X", tc[1]); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s/%s: %s", fam.tool(), tc[0], tc[1], out))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove chains: %s", strings.Join(errs, "; "))
	}
	return nil
}

// anyJump reports whether a jump into the daemon's chains is in fam's
// built-in chains (left by a run that failed half-way).
func (fw *Firewall) anyJump(ctx context.Context, fam family) bool {
	for _, j := range jumps(fw.Chains) {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		if _, err := run(ctx, nil, fam.tool(), check...); err == nil {
			return true
		}
	}
	return false
}

func chainExists(ctx context.Context, fam family, table, chain string) bool {
	_, err := run(ctx, nil, fam.tool(), "-w", "-t", table, "-S", chain, "1")
	return err == nil
}

// Rules lists the rules in the daemon's chains and its jumps from built-in
// chains, as iptables -S prints them ("nat: -A BERTH-DNAT-x ..."; from
// ip6tables "ip6 nat: ..."). It is the firewall part of the ownership
// report.
func (fw *Firewall) Rules(ctx context.Context) ([]string, error) {
	var out []string
	for _, tc := range fw.Chains.owned() {
		if !chainExists(ctx, ipv4, tc[0], tc[1]) {
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
	six, err := fw.rules6(ctx)
	return append(out, six...), err
}

// rules6 is Rules' IPv6 part, read from one dump per table: an IPv4-only
// daemon pays three execs for it, not one per chain and jump.
func (fw *Firewall) rules6(ctx context.Context) ([]string, error) {
	owned := map[string]bool{}
	for _, tc := range fw.Chains.owned() {
		owned[tc[1]] = true
	}
	var out []string
	for _, table := range []string{"raw", "filter", "nat"} {
		s, err := run(ctx, nil, "ip6tables", "-w", "-t", table, "-S")
		if err != nil {
			if _, lookErr := exec.LookPath("ip6tables"); lookErr != nil {
				return nil, nil // no IPv6 firewall on this host: nothing of ours in it
			}
			return nil, fmt.Errorf("ip6tables -t %s -S: %v: %s", table, err, s)
		}
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) < 2:
			case owned[f[1]]:
				out = append(out, "ip6 "+table+": "+l)
			case f[0] == "-A" && len(f) > 3 && f[len(f)-2] == "-j" && owned[f[len(f)-1]]:
				out = append(out, "ip6 "+table+": "+l)
			}
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
