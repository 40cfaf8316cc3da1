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
package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
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
// bridges and ports, creating the chains and their jumps when missing, and
// UserChain with its jump at the top of FORWARD.
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
	if err := ensureUserChain(ctx); err != nil {
		return err
	}
	for _, j := range jumps(fw.Chains) {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		if _, err := run(ctx, nil, "iptables", check...); err == nil {
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
		if out, err := run(ctx, nil, "iptables", append(op, j.args...)...); err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(op, " "), err, out)
		}
	}
	fw.jumpsOK = true
	return nil
}

// ensureUserChain creates UserChain when missing (leaving its rules alone)
// and makes its jump the first rule of FORWARD, so the admins' rules see
// forwarded traffic before any berth chain decides on it.
func ensureUserChain(ctx context.Context) error {
	if !chainExists(ctx, "filter", UserChain) {
		if out, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-N", UserChain); err != nil && !chainExists(ctx, "filter", UserChain) {
			return fmt.Errorf("iptables -N %s: %v: %s", UserChain, err, out)
		}
	}
	if first, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-S", "FORWARD", "1"); err == nil &&
		strings.TrimSpace(first) == "-A FORWARD -j "+UserChain {
		return nil
	}
	for {
		if _, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-D", "FORWARD", "-j", UserChain); err != nil {
			break
		}
	}
	if out, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-I", "FORWARD", "1", "-j", UserChain); err != nil {
		return fmt.Errorf("iptables -I FORWARD 1 -j %s: %v: %s", UserChain, err, out)
	}
	return nil
}

// DropForwarding sets the policy of the FORWARD chain to DROP, as dockerd
// does when it turns IP forwarding on: the host then routes nothing that
// no rule allows. The policy is host-wide and stays when berthd stops.
func DropForwarding(ctx context.Context) error {
	if out, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-P", "FORWARD", "DROP"); err != nil {
		return fmt.Errorf("iptables -P FORWARD DROP: %v: %s", err, out)
	}
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
// UserChain stays: its rules are the admins'.
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
	for _, tc := range fw.Chains.owned() {
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
	for _, tc := range fw.Chains.owned() {
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
