package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/berthd/berth/network/dns"
	"github.com/berthd/berth/network/iptables"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// upLocked makes a bridge network's device, address and DNS server exist.
// Idempotent. Callers hold m.mu and apply the firewall afterwards.
func (m *Manager) upLocked(st *netState) error {
	if st.rec.Driver != "bridge" {
		return nil
	}
	r := st.rec
	if st.upIndex != 0 && st.server != nil {
		// Set up before: a lookup by name (one netlink request) tells
		// whether it is still the same device, up. Each attach used to
		// set the bridge up again, and listing a device's addresses dumps
		// every address of the host: one link-local address per veth,
		// so an attach cost more with every running container.
		if l, err := netlink.LinkByName(r.Bridge); err == nil && l.Attrs().Index == st.upIndex && l.Attrs().Flags&net.FlagUp != 0 {
			return nil
		}
		st.upIndex = 0
	}
	var addr4, addr6 netip.Prefix
	if r.hasIPv4() {
		addr4 = netip.PrefixFrom(r.Gateway, r.Subnet.Bits())
	}
	if r.IPv6 != nil {
		addr6 = netip.PrefixFrom(r.IPv6.Gateway, r.IPv6.Subnet.Bits())
		if err := m.forwarding6Locked(); err != nil {
			return err
		}
	}
	index, err := ensureBridge(r.Bridge, addr4, addr6, st.opts.MTU)
	if err != nil {
		return err
	}
	if !r.Internal {
		// published ports reached on 127.0.0.1 are DNATed out of the
		// bridge; the firewall drops what comes in on the bridge for
		// 127.0.0.0/8 (CVE-2020-8558)
		if err := writeSysctl(filepath.Join("/proc/sys/net/ipv4/conf", r.Bridge, "route_localnet"), "1"); err != nil {
			return err
		}
	}
	if !st.opts.ICC {
		// traffic between two ports of a bridge meets iptables only
		// through br_netfilter
		if err := bridgeNetfilter(r.IPv6 != nil); err != nil {
			return fmt.Errorf("%s=false: %w", optICC, err)
		}
	}
	if st.server == nil {
		srv, err := dns.Serve(dns.Listener{Addr: st.dnsAddr(), Device: r.Bridge, NetworkID: r.ID, Internal: r.Internal}, m.handler, m.records, m.cfg.DNSZone)
		if err != nil {
			return fmt.Errorf("network %s: %w", r.Name, err)
		}
		st.server = srv
	}
	st.upIndex = index
	return nil
}

// downLocked stops the DNS server and deletes the bridge device.
func (m *Manager) downLocked(st *netState) error {
	if st.server != nil {
		_ = st.server.Close()
		st.server = nil
	}
	if st.rec.Driver != "bridge" {
		return nil
	}
	l, err := netlink.LinkByName(st.rec.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", st.rec.Bridge, err)
	}
	return nil
}

// ensureBridge makes the bridge device exist and up with the gateway
// addresses: addr4 and addr6 (either may be the zero Prefix). An IPv6
// bridge has IPv6 on and its gateway added without duplicate address
// detection (the address is usable at once, and the bridge is the
// subnet's only router, as with dockerd); the kernel's link-local address
// stays. Addresses left from an older configuration are removed.
func ensureBridge(name string, addr4, addr6 netip.Prefix, mtu int) (index int, err error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return 0, err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name = name
		// A bridge without a set address takes the lowest of its ports',
		// so it would change as containers come and go and leave stale
		// gateway entries in the containers' ARP caches.
		if addr4.IsValid() {
			br.HardwareAddr = macFromIP(addr4.Addr())
		} else {
			br.HardwareAddr = macFromIP(addr6.Addr())
		}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, os.ErrExist) {
			return 0, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return 0, err
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return 0, fmt.Errorf("%s exists and is not a bridge (%s)", name, l.Type())
	}
	if err := bridgeAddr(l, addr4, netlink.FAMILY_V4); err != nil {
		return 0, err
	}
	if addr6.IsValid() {
		if err := writeSysctl(filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6"), "0"); err != nil {
			return 0, err
		}
	}
	if err := bridgeAddr(l, addr6, netlink.FAMILY_V6); err != nil {
		return 0, err
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return 0, fmt.Errorf("MTU %d on %s: %w", mtu, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("bring up %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// bridgeAddrDumps counts bridgeAddr's address dumps (for the tests: an
// attach must not make one).
var bridgeAddrDumps atomic.Int64

// bridgeAddr makes want the bridge's one address of family (none when
// want is the zero Prefix). IPv6 link-local and multicast addresses are
// the kernel's and stay.
func bridgeAddr(l netlink.Link, want netip.Prefix, family int) error {
	bridgeAddrDumps.Add(1)
	addrs, err := redump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, family) })
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		p, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		p = p.Unmap()
		if family == netlink.FAMILY_V6 && (p.IsLinkLocalUnicast() || p.IsMulticast()) {
			continue
		}
		ones, _ := a.Mask.Size()
		if want.IsValid() && p == want.Addr() && ones == want.Bits() {
			have = true
			continue
		}
		// left from an older --bip or subnet
		_ = netlink.AddrDel(l, &a)
	}
	if have || !want.IsValid() {
		return nil
	}
	nl := &netlink.Addr{IPNet: &net.IPNet{IP: want.Addr().AsSlice(), Mask: net.CIDRMask(want.Bits(), want.Addr().BitLen())}}
	if family == netlink.FAMILY_V6 {
		nl.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(l, nl); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("address %s on %s: %w", want, l.Attrs().Name, err)
	}
	return nil
}

func writeSysctl(path, val string) error {
	b, err := os.ReadFile(path)
	if err == nil && string(b) == val+"\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", path, val, err)
	}
	return nil
}

// Up brings every network up on the host: bridge devices and addresses,
// DNS servers, rules. It is idempotent and sweeps nothing (containers that
// kept running are left alone); berthd calls it at start, before the
// runtime restores containers.
func (m *Manager) Up(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostLocked(stateCtx(ctx))
}

// hostLocked brings every network up and writes the firewall, once per
// daemon run. Callers hold m.mu.
func (m *Manager) hostLocked(ctx context.Context) error {
	if m.hostUp {
		return nil
	}
	if err := ensureForwarding(ctx, ipForwardPath, filepath.Join(m.cfg.ExecRoot, forwardingMarker), iptables.DropForwarding); err != nil {
		return err
	}
	for _, st := range m.sortedLocked() {
		if err := m.upLocked(st); err != nil {
			return fmt.Errorf("network %s: %w", st.rec.Name, err)
		}
	}
	if err := m.applyLocked(ctx); err != nil {
		return err
	}
	m.hostUp = true
	return nil
}

// applyLocked writes the firewall for every bridge network and published
// port. Callers hold m.mu.
func (m *Manager) applyLocked(ctx context.Context) error {
	var bridges []iptables.Bridge
	for _, st := range m.networks {
		if st.isBridge() {
			br := iptables.Bridge{Name: st.rec.Bridge, Internal: st.rec.Internal,
				DisableICC: !st.opts.ICC, DisableMasquerade: !st.opts.Masquerade}
			if st.rec.hasIPv4() {
				br.Subnet = st.rec.Subnet
			}
			if st.rec.IPv6 != nil {
				br.Subnet6 = st.rec.IPv6.Subnet
			}
			bridges = append(bridges, br)
		}
	}
	recs, _, err := m.portsTbl.List()
	if err != nil {
		return err
	}
	var ports []iptables.Port
	for _, pr := range recs {
		ports = append(ports, fwPorts(pr)...)
	}
	if err := m.fw.Apply(stateCtx(ctx), bridges, ports); err != nil {
		logrus.WithError(err).Error("network: firewall")
		return err
	}
	return nil
}

// hostRoutes are the host's routes of one family other than default routes
// and those of known subnets: a new network's subnet must not shadow them
// (another daemon's bridges, the host's own networks).
func hostRoutes(known []netip.Prefix, v6 bool) []netip.Prefix {
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	routes, err := redump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, family) })
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || ones == 0 {
			continue
		}
		a = a.Unmap()
		if a.Is6() != v6 {
			continue
		}
		p := netip.PrefixFrom(a, ones).Masked()
		if !slices.Contains(known, p) {
			out = append(out, p)
		}
	}
	return out
}
