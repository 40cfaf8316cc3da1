package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berthd/berth/network/dns"
	"github.com/berthd/berth/network/endpoint"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// AttachRequest says which container joins which network, and how
// (declared in the endpoint leaf, which the runtime names it by).
type AttachRequest = endpoint.AttachRequest

// Attach connects the sandbox at nsPath to a bridge network: a veth pair
// whose host side joins the bridge and whose other side becomes eth<N> in the
// sandbox, an address of each of the network's families from its IPAM, a
// default route when Primary and the network is not internal, and the
// container's DNS records. A container without a default route of a
// family gets one through this network when it is not internal and has
// that family, whatever Primary says. It returns the endpoint as Docker
// reports it in NetworkSettings.Networks.
//
// Errors: ErrNotFound "network x not found"; ErrInvalidArgument for host or
// null networks, for a static address or aliases on the default bridge
// (dockerd's messages), or an address outside the subnet; ErrConflict
// "endpoint with name x already exists in network y" when the container is
// attached already, "Address already in use" for a taken static address,
// and for an interface name in use in the container; ErrResourceExhausted
// when the subnet is full.
func (m *Manager) Attach(ctx context.Context, nsPath string, req AttachRequest) (*network.EndpointSettings, error) {
	ctx = stateCtx(ctx)
	if req.ContainerID == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("attach: no container id")
	}
	m.mu.Lock()
	unlocked := false
	defer func() {
		if !unlocked {
			m.mu.Unlock()
		}
	}()
	st, err := m.lookupLocked(req.Network)
	if err != nil {
		return nil, err
	}
	r := st.rec
	var mac net.HardwareAddr
	if req.MAC != "" {
		if mac, err = net.ParseMAC(req.MAC); err != nil || len(mac) != 6 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid MAC address: %s", req.MAC))
		}
	}
	switch r.Driver {
	case "host", "null":
		return nil, errdefs.ErrInvalidArgument.WithMessage("container cannot be disconnected from host network or connected to host network")
	}
	ifName := req.DriverOpts[optIfName]
	if ifName != "" && !validIfName(ifName) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid interface name %q (%s)", ifName, optIfName))
	}
	if old, ok := m.pending[epKey(r.ID, req.ContainerID)]; ok {
		// left from before a daemon restart and never restored: the
		// container is starting again
		removeVethPair(old)
		st.release(old)
		_ = m.eps.QueueDelete(epKey(r.ID, req.ContainerID)) // committed before the new record, which is waited for
		delete(m.pending, epKey(r.ID, req.ContainerID))
	}
	if _, ok := m.endpoints[epKey(r.ID, req.ContainerID)]; ok {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", req.ContainerName, r.Name))
	}
	if r.Predefined && r.Name == "bridge" {
		if req.IPv4.IsValid() || req.IPv6.IsValid() {
			return nil, errdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported on user defined networks only")
		}
		if len(req.Aliases) > 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage("network-scoped alias is supported only for containers in user defined networks")
		}
	}
	if err := m.hostLocked(ctx); err != nil {
		return nil, err
	}
	if err := m.upLocked(st); err != nil {
		return nil, err
	}
	ep := &endpointRecord{
		ID: newID(), NetworkID: r.ID, ContainerID: req.ContainerID, ContainerName: req.ContainerName,
		Hostname: req.Hostname, Aliases: slices.Clone(req.Aliases), Static: req.IPv4.IsValid(), Static6: req.IPv6.IsValid(),
		NsPath: nsPath, Primary: req.Primary, Labels: req.Labels, Links: req.Links, IfName: ifName,
	}
	if ep.IP, ep.IPv6, err = allocate(st, req.IPv4, req.IPv6); err != nil {
		return nil, err
	}
	if mac == nil && ep.IP.IsValid() {
		mac = macFromIP(ep.IP)
	} else if mac == nil {
		mac = randomMAC()
	}
	ep.DNS = slices.Clone(req.DNS)
	ep.MAC = mac.String()
	ep.HostVeth = "vb" + ep.ID[:12]
	if err := m.plumb(ctx, st, ep, mac); err != nil {
		st.release(ep)
		return nil, err
	}
	// the record is queued here, in order with every other write of the
	// manager, and waited for once the lock is released (persist order:
	// network/persist.go)
	saved, err := m.eps.QueuePut(epKey(r.ID, req.ContainerID), ep)
	if err != nil {
		deleteVeth(ep.HostVeth)
		st.release(ep)
		return nil, err
	}
	m.endpoints[epKey(r.ID, req.ContainerID)] = ep
	m.records.Add(m.dnsEndpoint(st, ep))
	writes := append(m.gatewayLocked(req.ContainerID), saved)
	m.publish(events.ActionConnect, st, req.ContainerID)
	settings := m.settings(st, ep)
	m.mu.Unlock()
	unlocked = true
	if err := waitAll(writes); err != nil {
		_ = m.Detach(ctx, req.ContainerID, r.ID)
		return nil, fmt.Errorf("store endpoint of %s: %w", req.ContainerID, err)
	}
	return settings, nil
}

// allocate takes an endpoint's addresses: one of each family the network
// has (want4/want6 when given). A static address of a family the network
// does not have is ErrInvalidArgument; the first address is released when
// the second fails.
func allocate(st *netState, want4, want6 netip.Addr) (ip4, ip6 netip.Addr, err error) {
	notHere := func(a netip.Addr) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid IP address %s: It does not belong to any of this network's subnets", a))
	}
	if want4.IsValid() && (st.sub == nil || !want4.Unmap().Is4()) {
		return ip4, ip6, notHere(want4)
	}
	if want6.IsValid() && st.sub6 == nil {
		return ip4, ip6, notHere(want6)
	}
	if st.sub != nil {
		if ip4, err = st.sub.Allocate(want4.Unmap()); err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
	}
	if st.sub6 != nil {
		if ip6, err = st.sub6.Allocate(want6); err != nil {
			if ip4.IsValid() {
				st.sub.Release(ip4)
			}
			return netip.Addr{}, netip.Addr{}, err
		}
	}
	return ip4, ip6, nil
}

// plumb makes the veth pair and configures the sandbox side, named
// ep.IfName when set, else the network's prefix and the lowest free number.
func (m *Manager) plumb(ctx context.Context, st *netState, ep *endpointRecord, mac net.HardwareAddr) (retErr error) {
	ns, err := netns.GetFromPath(ep.NsPath)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("sandbox %s: %v", ep.NsPath, err))
	}
	defer ns.Close()
	br, err := netlink.LinkByName(st.rec.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", st.rec.Bridge, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	ifName := ep.IfName
	if ifName == "" {
		if ifName, err = nextIfName(h, st.opts.IfPrefix); err != nil {
			return err
		}
	} else if _, err := h.LinkByName(ifName); err == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("interface name %s is already in use in the container", ifName))
	}
	ep.IfName = ifName
	tmpName := "vc" + ep.ID[:12]
	la := netlink.NewLinkAttrs()
	la.Name = ep.HostVeth
	la.MasterIndex = br.Attrs().Index
	la.MTU = br.Attrs().MTU
	veth := &netlink.Veth{LinkAttrs: la, PeerName: tmpName, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	defer func() {
		if retErr != nil {
			deleteVeth(ep.HostVeth)
		}
	}()
	host, err := netlink.LinkByName(ep.HostVeth)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", ep.HostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	peer, err := h.LinkByName(tmpName)
	if err != nil {
		return err
	}
	if err := h.LinkSetName(peer, ifName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpName, ifName, err)
	}
	if ep.IP.IsValid() {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(st.rec.Subnet.Bits(), 32)}}
		if err := h.AddrAdd(peer, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", ep.IP, ifName, err)
		}
	}
	if ep.IPv6.IsValid() {
		if err := enableIPv6In(ep.NsPath, ifName); err != nil {
			return err
		}
		// no duplicate address detection: IPAM is the one owner of the
		// subnet, and the address must work before the container starts
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ep.IPv6.AsSlice(), Mask: net.CIDRMask(st.rec.IPv6.Subnet.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(peer, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", ep.IPv6, ifName, err)
		}
	}
	if err := h.LinkSetUp(peer); err != nil {
		return err
	}
	if ep.Primary && !st.rec.Internal && ep.IP.IsValid() {
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: st.rec.Gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s: %w", st.rec.Gateway, err)
		}
	}
	if ep.Primary && !st.rec.Internal && ep.IPv6.IsValid() {
		if err := h.RouteReplace(defaultRoute6(peer.Attrs().Index, st.rec.IPv6.Gateway)); err != nil {
			return fmt.Errorf("default route via %s: %w", st.rec.IPv6.Gateway, err)
		}
		ep.Gateway6 = true
	}
	return nil
}

// nextIfName is the lowest <prefix><N> (eth0, eth1, ...) not in use in the
// sandbox.
func nextIfName(h *netlink.Handle, prefix string) (string, error) {
	links, err := redump(h.LinkList)
	if err != nil {
		return "", err
	}
	used := map[int]bool{}
	for _, l := range links {
		if n, ok := strings.CutPrefix(l.Attrs().Name, prefix); ok {
			if i, err := strconv.Atoi(n); err == nil {
				used[i] = true
			}
		}
	}
	for i := 0; ; i++ {
		if !used[i] {
			return prefix + strconv.Itoa(i), nil
		}
	}
}

// macFromIP is dockerd's classic 02:42:<ip> address: stable for an address,
// so a peer's stale ARP entry for a reused IP is still right. An IPv6
// address gives its last four bytes (for an IPv6-only bridge).
func macFromIP(ip netip.Addr) net.HardwareAddr {
	if ip.Is6() {
		b := ip.As16()
		return net.HardwareAddr{0x02, 0x42, b[12], b[13], b[14], b[15]}
	}
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// randomMAC is a locally administered unicast address, for an endpoint
// without an IPv4 address to derive one from (dockerd's are random too).
func randomMAC() net.HardwareAddr {
	b := make(net.HardwareAddr, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&0xfe | 0x02
	return b
}

func deleteVeth(name string) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return
	}
	if err := netlink.LinkDel(l); err != nil {
		logrus.WithError(err).Warnf("network: delete veth %s", name)
	}
}

// Detach removes a container's endpoint from a network: its veth pair, its
// address, its DNS records. A container that is not attached is not an
// error; an unknown network is ErrNotFound.
func (m *Manager) Detach(ctx context.Context, containerID, networkIDOrName string) error {
	m.mu.Lock()
	st, err := m.lookupLocked(networkIDOrName)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	ep := m.detachLocked(st, containerID)
	writes := m.gatewayLocked(containerID)
	m.mu.Unlock()
	if ep != nil {
		m.unplug(st, ep)
	}
	return waitAll(writes)
}

// gatewayLocked keeps a container's default routes through networks that
// are not internal, as dockerd moves the default gateway when networks
// come and go: for each family apart, the endpoint that has the route
// keeps it; when none has (its network went, or the container had
// internal networks only), the first by network name that has the family
// gets it. Without such a network the container has on-link routes only.
// It returns the queued writes of the endpoints it changed, to be waited
// for after m.mu is released.
func (m *Manager) gatewayLocked(containerID string) []*store.Pending {
	var writes []*store.Pending
	for _, v6 := range []bool{false, true} {
		var next *endpointRecord
		var nextNet *netState
		for _, ep := range m.endpoints {
			st := m.networks[ep.NetworkID]
			if ep.ContainerID != containerID || st == nil || st.rec.Internal {
				continue
			}
			if v6 && (!ep.IPv6.IsValid() || st.rec.IPv6 == nil) || !v6 && !ep.IP.IsValid() {
				continue
			}
			if !v6 && ep.Primary || v6 && ep.Gateway6 {
				next = nil
				break
			}
			if next == nil || st.rec.Name < nextNet.rec.Name {
				next, nextNet = ep, st
			}
		}
		if next == nil {
			continue
		}
		gw := nextNet.rec.Gateway
		if v6 {
			gw = nextNet.rec.IPv6.Gateway
		}
		if err := defaultRoute(next.NsPath, next.IfName, gw); err != nil {
			logrus.WithError(err).Warnf("network: default route of %s via %s", containerID[:min(12, len(containerID))], nextNet.rec.Name)
			continue
		}
		if v6 {
			next.Gateway6 = true
		} else {
			next.Primary = true
		}
		p, err := m.eps.QueuePut(epKey(next.NetworkID, containerID), next)
		if err != nil {
			logrus.WithError(err).Warnf("network: store endpoint of %s", containerID[:min(12, len(containerID))])
			continue
		}
		writes = append(writes, p)
	}
	return writes
}

// defaultRoute points the sandbox's default route of gw's family at gw
// through ifName.
func defaultRoute(nsPath, ifName string, gw netip.Addr) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(ifName)
	if err != nil {
		return err
	}
	if gw.Is6() {
		return h.RouteReplace(defaultRoute6(l.Attrs().Index, gw))
	}
	return h.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Scope: netlink.SCOPE_UNIVERSE})
}

// defaultRoute6 is the IPv6 default route via gw out of link index.
func defaultRoute6(index int, gw netip.Addr) *netlink.Route {
	return &netlink.Route{LinkIndex: index, Gw: gw.AsSlice(), Scope: netlink.SCOPE_UNIVERSE, Family: netlink.FAMILY_V6,
		Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
}

// detachLocked takes a container's endpoint off a network in memory (its
// DNS records go now) and returns it (nil when the container was not
// attached); the caller unplugs it once m.mu is released.
func (m *Manager) detachLocked(st *netState, containerID string) *endpointRecord {
	key := epKey(st.rec.ID, containerID)
	ep, ok := m.endpoints[key]
	if !ok {
		ep, ok = m.pending[key]
		delete(m.pending, key)
	}
	if !ok {
		return nil
	}
	delete(m.endpoints, key)
	m.records.Remove(st.rec.ID, containerID)
	m.publish(events.ActionDisconnect, st, containerID)
	return ep
}

// unplug takes the host side of a detached endpoint's veth down, which cuts
// the container off (a disconnect is complete when it returns), and
// deletes the pair in the background: that takes the kernel tens of
// milliseconds (an RCU grace period). Only then are the record deleted and
// the address released (network/persist.go).
func (m *Manager) unplug(st *netState, ep *endpointRecord) {
	if l, err := netlink.LinkByName(ep.HostVeth); err == nil {
		_ = netlink.LinkSetDown(l)
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		removeVethPair(ep)
		m.forget(st, epKey(st.rec.ID, ep.ContainerID), ep)
	}()
}

// removeVethPair deletes the host side (which takes the sandbox side with
// it); when the host side is gone but the sandbox lives, it deletes the
// sandbox side by name.
func removeVethPair(ep *endpointRecord) {
	if l, err := netlink.LinkByName(ep.HostVeth); err == nil {
		// ENODEV: the sandbox went meanwhile and took the pair with it
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			logrus.WithError(err).Warnf("network: delete veth %s", ep.HostVeth)
		}
		return
	}
	if !isNsMount(ep.NsPath) || ep.IfName == "" {
		return
	}
	ns, err := netns.GetFromPath(ep.NsPath)
	if err != nil {
		return
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return
	}
	defer h.Close()
	if l, err := h.LinkByName(ep.IfName); err == nil {
		_ = h.LinkDel(l)
	}
}

func (m *Manager) dnsEndpoint(st *netState, ep *endpointRecord) dns.Endpoint {
	return dns.Endpoint{
		ContainerID: ep.ContainerID, Name: ep.ContainerName, Hostname: ep.Hostname, Aliases: ep.Aliases,
		IP: ep.IP, IPv6: ep.IPv6, NetworkID: st.rec.ID, NetworkName: st.rec.Name, Internal: st.rec.Internal, Labels: ep.Labels,
		Links: ep.Links, Upstreams: upstreams(ep.DNS), NsPath: ep.NsPath,
	}
}

// upstreams are a container's --dns servers on port 53.
func upstreams(servers []netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ip := range servers {
		if ip.IsValid() {
			out = append(out, netip.AddrPortFrom(ip, 53))
		}
	}
	return out
}

// settings is the endpoint as NetworkSettings.Networks[name] shows it.
func (m *Manager) settings(st *netState, ep *endpointRecord) *network.EndpointSettings {
	mac, _ := net.ParseMAC(ep.MAC)
	es := &network.EndpointSettings{
		Aliases:    slices.Clone(ep.Aliases),
		NetworkID:  st.rec.ID,
		EndpointID: ep.ID,
		MacAddress: network.HardwareAddr(mac),
		DNSNames:   dnsNames(ep),
	}
	if ep.IP.IsValid() {
		es.IPAddress, es.IPPrefixLen = ep.IP, st.rec.Subnet.Bits()
		if !st.rec.Internal {
			es.Gateway = st.rec.Gateway
		}
	}
	if v6 := st.rec.IPv6; v6 != nil && ep.IPv6.IsValid() {
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = ep.IPv6, v6.Subnet.Bits()
		if !st.rec.Internal {
			es.IPv6Gateway = v6.Gateway
		}
	}
	if ep.Static || ep.Static6 {
		es.IPAMConfig = &network.EndpointIPAMConfig{}
		if ep.Static {
			es.IPAMConfig.IPv4Address = ep.IP
		}
		if ep.Static6 {
			es.IPAMConfig.IPv6Address = ep.IPv6
		}
	}
	return es
}

// dnsNames is Docker's DNSNames (the names the DNS server answers to).
func dnsNames(ep *endpointRecord) []string {
	return dns.Endpoint{ContainerID: ep.ContainerID, Name: ep.ContainerName, Hostname: ep.Hostname, Aliases: ep.Aliases}.Names()
}

// Endpoint returns a container's endpoint on a network as Docker reports
// it. ErrNotFound when the network is unknown or the container not attached.
func (m *Manager) Endpoint(ctx context.Context, containerID, networkIDOrName string) (*network.EndpointSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(networkIDOrName)
	if err != nil {
		return nil, err
	}
	ep, ok := m.endpoints[epKey(st.rec.ID, containerID)]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s is not connected to network %s", containerID, st.rec.Name))
	}
	return m.settings(st, ep), nil
}
