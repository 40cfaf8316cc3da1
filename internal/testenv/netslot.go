package testenv

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetSlot is a set of host-global network names and addresses that no
// other test, in this process or another, uses while the slot is held: a
// bridge name for a daemon's default network and an address block for its
// --bip and --default-address-pool. Blocks are /20s of 10.216.0.0/14, clear
// of berthd's default 10.210.0.0/16, the reference engines' 10.213/16 and
// 10.214/16, and Docker's 172.17/16. IPv6 blocks are /56s of the ULA
// fd62:6572:7468::/48, whose lower half is the daemon's IPv6 pool and
// whose upper half is for subnets a test names itself (Subnet6).
type NetSlot struct {
	N      int
	Bridge string       // "bt<N>"
	Block  netip.Prefix // 10.216.0.0/20 + N
	BIP    string       // the first /24 of the block, gateway .1
	Pool   string       // dockerd syntax: base=<block>,size=24
	Block6 netip.Prefix // fd62:6572:7468:<N>00::/56
	Pool6  string       // base=<lower half of Block6>,size=64
}

// Args are the berthd flags that put a daemon in the slot. The upstream
// resolver is 127.0.0.1 (where nothing answers on port 53): a name the
// embedded DNS server does not know must never make a test's daemon query
// the host's real resolvers.
func (s NetSlot) Args() []string {
	return []string{"--bridge", s.Bridge, "--bip", s.BIP, "--default-address-pool", s.Pool,
		"--default-address-pool", s.Pool6, "--dns", "127.0.0.1"}
}

// Subnet6 is the i-th /64 (0..127) of the upper half of Block6: an IPv6
// subnet no other test and no daemon pool uses.
func (s NetSlot) Subnet6(i int) netip.Prefix {
	b := s.Block6.Addr().As16()
	b[7] = byte(128 + i%128)
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// block6 is slot n's IPv6 block.
func block6(n int) netip.Prefix {
	b := netip.MustParseAddr("fd62:6572:7468::").As16()
	b[6] = byte(n)
	return netip.PrefixFrom(netip.AddrFrom16(b), 56)
}

const netSlots = 64

// TakeNetSlot holds a free slot (an flock on /run/berth-test-pools/N.lock)
// until the test ends.
func TakeNetSlot(t testing.TB) NetSlot {
	t.Helper()
	dir := "/run/berth-test-pools"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < netSlots; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		t.Cleanup(func() { f.Close() }) // closing releases the lock
		base := netip.AddrFrom4([4]byte{10, byte(216 + n/16), byte((n % 16) * 16), 0})
		slot := NetSlot{
			N:      n,
			Bridge: fmt.Sprintf("bt%d", n),
			Block:  netip.PrefixFrom(base, 20),
			BIP:    netip.PrefixFrom(base.Next(), 24).String(),
			Pool:   fmt.Sprintf("base=%s,size=24", netip.PrefixFrom(base, 20)),
			Block6: block6(n),
			Pool6:  fmt.Sprintf("base=%s,size=64", netip.PrefixFrom(block6(n).Addr(), 57)),
		}
		slot.Scrub()
		return slot
	}
	t.Fatalf("all %d test network slots are busy", netSlots)
	return NetSlot{}
}

// Scrub removes what an earlier holder of the slot left behind when it
// crashed or failed half-way: bridges with an address in the blocks (and
// the veths on them), and the iptables and ip6tables chains tagged with the
// slot's bridge name and the jumps to them. Nothing outside the slot is
// touched.
func (s NetSlot) Scrub() {
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	doomed := map[int]bool{}
	for _, l := range links {
		if l.Type() != "bridge" {
			continue
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && (s.Block.Contains(ip.Unmap()) || s.Block6.Contains(ip)) {
				doomed[l.Attrs().Index] = true
			}
		}
		if l.Attrs().Name == s.Bridge {
			doomed[l.Attrs().Index] = true
		}
	}
	for _, l := range links {
		if doomed[l.Attrs().MasterIndex] && l.Type() == "veth" {
			_ = netlink.LinkDel(l)
		}
	}
	for _, l := range links {
		if doomed[l.Attrs().Index] {
			_ = netlink.LinkDel(l)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		s.scrubRules(tool)
	}
}

func (s NetSlot) scrubRules(tool string) {
	for _, table := range []string{"raw", "filter", "nat"} {
		out, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "-N" && s.ownsChain(f[1]) {
				chains = append(chains, f[1])
			}
			if len(f) > 3 && f[0] == "-A" && !strings.HasPrefix(f[1], "BERTH-") && s.ownsChain(f[len(f)-1]) {
				_ = exec.Command(tool, append([]string{"-w", "-t", table, "-D"}, f[1:]...)...).Run()
			}
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-X", c).Run()
		}
	}
}

func (s NetSlot) ownsChain(name string) bool {
	return strings.HasPrefix(name, "BERTH-") && strings.HasSuffix(name, "-"+s.Bridge)
}
