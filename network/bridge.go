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

	"github.com/berthd/berth/network/dns"
	"github.com/berthd/berth/network/iptables"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// upLocked makes a bridge network's device, address and DNS server exist.
// Idempotent. Callers hold m.mu and apply the firewall afterwards.
func (m *Manager) upLocked(st *netState) error {
	if st.rec.Driver != "bridge" {
		return nil
	}
	r := st.rec
	if err := ensureBridge(r.Bridge, netip.PrefixFrom(r.Gateway, r.Subnet.Bits()), st.opts.MTU); err != nil {
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
		if err := bridgeNetfilter(); err != nil {
			return fmt.Errorf("%s=false: %w", optICC, err)
		}
	}
	if st.server == nil {
		srv, err := dns.Serve(dns.Listener{Addr: r.Gateway, Device: r.Bridge, NetworkID: r.ID, Internal: r.Internal}, m.handler, m.records, m.cfg.DNSZone)
		if err != nil {
			return fmt.Errorf("network %s: %w", r.Name, err)
		}
		st.server = srv
	}
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

func ensureBridge(name string, addr netip.Prefix, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name = name
		// A bridge without a set address takes the lowest of its ports',
		// so it would change as containers come and go and leave stale
		// gateway entries in the containers' ARP caches.
		br.HardwareAddr = macFromIP(addr.Addr())
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return err
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge (%s)", name, l.Type())
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		p, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if p == addr.Addr() && ones == addr.Bits() {
			have = true
			continue
		}
		// left from an older --bip
		_ = netlink.AddrDel(l, &a)
	}
	if !have {
		nl := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
		if err := netlink.AddrAdd(l, nl); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("address %s on %s: %w", addr, name, err)
		}
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("MTU %d on %s: %w", mtu, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
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
		if st.rec.Driver == "bridge" {
			bridges = append(bridges, iptables.Bridge{Name: st.rec.Bridge, Subnet: st.rec.Subnet, Internal: st.rec.Internal,
				DisableICC: !st.opts.ICC, DisableMasquerade: !st.opts.Masquerade})
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

// hostRoutes are the host's IPv4 routes other than default routes and those
// of known subnets: a new network's subnet must not shadow them (another
// daemon's bridges, the host's own networks).
func hostRoutes(known []netip.Prefix) []netip.Prefix {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok || ones == 0 {
			continue
		}
		p := netip.PrefixFrom(a, ones).Masked()
		if !slices.Contains(known, p) {
			out = append(out, p)
		}
	}
	return out
}
