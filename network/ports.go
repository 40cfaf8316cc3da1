package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/berthd/berth/network/iptables"
	"github.com/berthd/berth/network/portmap"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// PublishPorts publishes a container's ports on the host: for every binding
// a host port is held (HostPort "" or "0": one from the ephemeral range;
// "8000-8010": the first free one) and DNATed to containerIP. A binding
// without a host address binds the network's host_binding_ipv4 (0.0.0.0
// unless set). With
// publishAll, every exposed port without a binding gets an ephemeral one on
// 0.0.0.0. Ports published before for the container are replaced. It
// returns what was bound, as inspect, ps and `docker port` show it
// (HostIP 0.0.0.0 for every address).
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
		if e.ContainerID == containerID && e.IP == containerIP {
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
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				// com.docker.network.bridge.host_binding_ipv4, 0.0.0.0 by default
				hostIP = st.opts.HostIP
			}
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			if hostIP.Is6() {
				if hostIP.IsUnspecified() {
					continue // IPv4 only: "::" adds nothing to 0.0.0.0
				}
				return fail(errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid host address %s: IPv6 is not supported by berth", hostIP)))
			}
			lo, hi, err := portmap.HostPortRange(b.HostPort)
			if err != nil {
				return fail(err)
			}
			got, err := m.ports.Request(hostIP, proto, lo, hi)
			if err != nil {
				if errdefs.IsInternal(err) {
					err = errdefs.ErrInternal.WithMessage(fmt.Sprintf("driver failed programming external connectivity on endpoint %s (%s): %s", ep.ContainerName, ep.ID, err.Error()))
				}
				return fail(err)
			}
			rec.Ports = append(rec.Ports, portRecord{
				HostIP: hostIP, HostPort: got, Proto: proto,
				ContainerIP: containerIP, ContainerPort: p.Num(), Bridge: st.rec.Bridge,
			})
			out[p] = append(out[p], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(got))})
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
	defer m.mu.Unlock()
	return m.unpublishLocked(stateCtx(ctx), containerID)
}

// unpublishLocked drops a container's rules, record and held ports.
func (m *Manager) unpublishLocked(ctx context.Context, containerID string) error {
	rec, err := m.portsTbl.Get(containerID)
	if err != nil {
		return nil
	}
	if err := m.portsTbl.Delete(containerID); err != nil {
		return err
	}
	for _, p := range rec.Ports {
		m.ports.Release(portmap.Key{IP: p.HostIP, Proto: p.Proto, Port: p.HostPort})
	}
	if !m.hostUp {
		return nil
	}
	if err := m.fw.DeletePorts(ctx, fwPorts(rec)); err != nil {
		// a rule was missing: rewrite everything from the store
		return m.applyLocked(ctx)
	}
	return nil
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
