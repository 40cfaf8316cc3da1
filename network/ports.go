package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/network/iptables"
	"github.com/berthd/berth/network/portmap"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// PublishPorts publishes a container's ports on the host: for every binding
// a host port is held (HostPort "" or "0": one from the ephemeral range;
// "8000-8010": the first free one) and DNATed to the container's address
// of the binding's family on the network of containerIP (either of the
// endpoint's addresses). A binding without a host address binds the
// network's host_binding_ipv4 (0.0.0.0 unless set); on a network with
// IPv6, 0.0.0.0 stands for :: too, with the same port, as with dockerd (an
// IPv6-only network binds :: alone). An IPv6 binding on ::1, and the ::1
// part of one on ::, is forwarded by the socket that holds the port (DNAT
// cannot reach a container from ::1). With publishAll, every exposed port
// without a binding gets an ephemeral one. Ports published before for the
// container are replaced. It returns what was bound, as inspect, ps and
// `docker port` show it (HostIP 0.0.0.0 or :: for every address).
//
// Errors: ErrInvalidArgument when containerIP is not one of the container's
// endpoints or a binding is malformed; ErrInternal "driver failed
// programming external connectivity on endpoint <name> (<id>): Bind for
// 0.0.0.0:8080 failed: port is already allocated" (dockerd's 500) when a
// host port is taken; ErrResourceExhausted when no ephemeral port is left.
func (m *Manager) PublishPorts(ctx context.Context, containerID string, containerIP netip.Addr, bindings network.PortMap, publishAll bool, exposed network.PortSet) (network.PortMap, error) {
	ctx = stateCtx(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.hostLocked(ctx); err != nil {
		return nil, err
	}
	var ep *endpointRecord
	for _, e := range m.endpoints {
		if e.ContainerID == containerID && containerIP.IsValid() && (e.IP == containerIP || e.IPv6 == containerIP) {
			ep = e
		}
	}
	if ep == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %s has no endpoint with address %s", containerID, containerIP))
	}
	st := m.networks[ep.NetworkID]
	if err := m.unpublishLocked(ctx, containerID); err != nil {
		return nil, err
	}
	if st.rec.Internal {
		// dockerd publishes nothing from an internal network either
		return network.PortMap{}, nil
	}

	want := map[network.Port][]network.PortBinding{}
	for p, bs := range bindings {
		want[p] = append(want[p], bs...)
		if len(bs) == 0 {
			want[p] = []network.PortBinding{{}}
		}
	}
	if publishAll {
		for p := range exposed {
			if _, ok := want[p]; !ok {
				want[p] = []network.PortBinding{{}}
			}
		}
	}
	ports := make([]network.Port, 0, len(want))
	for p := range want {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b network.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		return compareStr(string(a.Proto()), string(b.Proto()))
	})

	out := network.PortMap{}
	rec := &portsRecord{ContainerID: containerID}
	fail := func(err error) (network.PortMap, error) {
		for _, p := range rec.Ports {
			m.ports.Release(portmap.Key{IP: p.HostIP, Proto: p.Proto, Port: p.HostPort})
		}
		return nil, err
	}
	for _, p := range ports {
		proto := string(p.Proto())
		for _, b := range want[p] {
			hostIPs, err := bindAddrs(st, ep, b.HostIP)
			if err != nil {
				return fail(err)
			}
			if len(hostIPs) == 0 {
				continue
			}
			lo, hi, err := portmap.HostPortRange(b.HostPort)
			if err != nil {
				return fail(err)
			}
			got, err := m.holdLocked(hostIPs, proto, lo, hi)
			if err != nil {
				if errdefs.IsInternal(err) {
					err = errclass.Wrap(errdefs.ErrInternal, fmt.Sprintf("driver failed programming external connectivity on endpoint %s (%s)", ep.ContainerName, ep.ID), err)
				}
				return fail(err)
			}
			for _, hostIP := range hostIPs {
				ctrIP := ep.IP
				if hostIP.Is6() {
					ctrIP = ep.IPv6
				}
				pr := portRecord{HostIP: hostIP, HostPort: got, Proto: proto, ContainerIP: ctrIP, ContainerPort: p.Num(), Bridge: st.rec.Bridge}
				rec.Ports = append(rec.Ports, pr)
				if err := m.forwardLocked(pr); err != nil {
					return fail(err)
				}
				out[p] = append(out[p], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(got))})
			}
		}
	}
	if len(rec.Ports) == 0 {
		return out, nil
	}
	if err := m.portsTbl.Put(containerID, rec); err != nil {
		return fail(err)
	}
	if err := m.fw.AddPorts(ctx, fwPorts(rec)); err != nil {
		_ = m.portsTbl.Delete(containerID)
		return fail(err)
	}
	return out, nil
}

// bindAddrs are the host addresses a binding with host address ip holds on
// st for ep (see PublishPorts). None means the binding adds nothing (:: on
// an IPv4-only network, as before berth had IPv6). An address of a family
// the network lacks is ErrInvalidArgument.
func bindAddrs(st *netState, ep *endpointRecord, ip netip.Addr) ([]netip.Addr, error) {
	if !ip.IsValid() {
		// com.docker.network.bridge.host_binding_ipv4, 0.0.0.0 by default
		ip = st.opts.HostIP
	}
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	ip = ip.Unmap()
	has6 := ep.IPv6.IsValid()
	if !has6 {
		if ip.Is6() {
			if ip.IsUnspecified() {
				return nil, nil // IPv4 only: "::" adds nothing to 0.0.0.0
			}
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid host address %s: network %s has no IPv6", ip, st.rec.Name))
		}
		return []netip.Addr{ip}, nil
	}
	switch {
	case ip.Is6():
		return []netip.Addr{ip}, nil
	case !ep.IP.IsValid() && ip.IsUnspecified():
		return []netip.Addr{netip.IPv6Unspecified()}, nil
	case !ep.IP.IsValid():
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid host address %s: network %s has no IPv4", ip, st.rec.Name))
	case ip.IsUnspecified():
		return []netip.Addr{ip, netip.IPv6Unspecified()}, nil
	}
	return []netip.Addr{ip}, nil
}

// holdLocked holds one host port, the same on every address of ips
// (0.0.0.0 and :: for one binding, as dockerd): a fixed port, the first
// free one of a range, or an ephemeral one.
func (m *Manager) holdLocked(ips []netip.Addr, proto string, lo, hi uint16) (uint16, error) {
	if len(ips) == 1 {
		return m.ports.Request(ips[0], proto, lo, hi)
	}
	tryAll := func(p uint16) error {
		for i, ip := range ips {
			if _, err := m.ports.Request(ip, proto, p, p); err != nil {
				for _, held := range ips[:i] {
					m.ports.Release(portmap.Key{IP: held, Proto: proto, Port: p})
				}
				return err
			}
		}
		return nil
	}
	if lo != 0 {
		var last error
		for p := int(lo); p <= int(hi); p++ {
			if last = tryAll(uint16(p)); last == nil {
				return uint16(p), nil
			}
		}
		if lo == hi {
			return 0, last
		}
		return 0, portmap.ErrAllocated(ips[0], lo)
	}
	for range 64 {
		p, err := m.ports.Request(ips[0], proto, 0, 0)
		if err != nil {
			return 0, err
		}
		m.ports.Release(portmap.Key{IP: ips[0], Proto: proto, Port: p})
		if err := tryAll(p); err == nil {
			return p, nil
		}
	}
	return 0, errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf("Bind for %s failed: no ephemeral port is free on every address", netip.AddrPortFrom(ips[0], 0)))
}

// forwardLocked starts the user-space forwarding of an IPv6 port on ::1 or
// :: (for ::1; see iptables.Ruleset6). Other ports are DNAT's alone.
func (m *Manager) forwardLocked(p portRecord) error {
	if !p.HostIP.Is6() || !(p.HostIP.IsLoopback() || p.HostIP.IsUnspecified()) || (p.Proto != "tcp" && p.Proto != "udp") {
		return nil
	}
	return m.ports.Forward(portmap.Key{IP: p.HostIP, Proto: p.Proto, Port: p.HostPort}, netip.AddrPortFrom(p.ContainerIP, p.ContainerPort))
}

func fwPorts(rec *portsRecord) []iptables.Port {
	out := make([]iptables.Port, 0, len(rec.Ports))
	for _, p := range rec.Ports {
		out = append(out, iptables.Port{
			Bridge: p.Bridge, HostIP: p.HostIP, HostPort: p.HostPort, Proto: p.Proto,
			ContainerIP: p.ContainerIP, ContainerPort: p.ContainerPort, Container: rec.ContainerID,
		})
	}
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// UnpublishPorts removes a container's published ports (rules and held host
// ports). A container without ports is not an error.
func (m *Manager) UnpublishPorts(ctx context.Context, containerID string) error {
	m.mu.Lock()
	deleted, err := m.unpublishQueued(stateCtx(ctx), containerID)
	m.mu.Unlock()
	return errors.Join(err, deleted.Wait())
}

// unpublishLocked drops a container's rules, record and held ports.
func (m *Manager) unpublishLocked(ctx context.Context, containerID string) error {
	deleted, err := m.unpublishQueued(ctx, containerID)
	return errors.Join(err, deleted.Wait())
}

// unpublishQueued drops a container's rules and held ports, then queues the
// deletion of its record, which the caller waits for (after releasing m.mu).
// Callers hold m.mu.
func (m *Manager) unpublishQueued(ctx context.Context, containerID string) (*store.Pending, error) {
	rec, err := m.portsTbl.Get(containerID)
	if err != nil {
		return nil, nil
	}
	for _, p := range rec.Ports {
		m.ports.Release(portmap.Key{IP: p.HostIP, Proto: p.Proto, Port: p.HostPort})
	}
	if m.hostUp {
		if err := m.fw.DeletePorts(ctx, fwPorts(rec)); err != nil {
			// a rule was missing: rewrite everything from the store, without
			// this container's ports
			deleted := m.portsTbl.QueueDelete(containerID)
			return deleted, m.applyLocked(ctx)
		}
	}
	return m.portsTbl.QueueDelete(containerID), nil
}

// Ports returns what a container publishes (nil when nothing).
func (m *Manager) Ports(containerID string) network.PortMap {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.portsTbl.Get(containerID)
	if err != nil {
		return nil
	}
	out := network.PortMap{}
	for _, p := range rec.Ports {
		port, _ := network.PortFrom(p.ContainerPort, network.IPProtocol(p.Proto))
		out[port] = append(out[port], network.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	return out
}
