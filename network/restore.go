package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthd/berth/inventory"
	"github.com/berthd/berth/network/endpoint"
	"github.com/berthd/berth/network/iptables"
	"github.com/berthd/berth/network/portmap"
	"github.com/berthd/berth/store"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// RestoreRequest describes a container that kept running across a daemon
// restart (declared in the endpoint leaf).
type RestoreRequest = endpoint.RestoreRequest

// loadEndpoints reads the stored endpoints as pending: their addresses stay
// reserved until Restore claims them or RestoreDone releases them.
func (m *Manager) loadEndpoints() error {
	eps, bad, err := m.eps.List()
	if err != nil {
		return err
	}
	for _, b := range bad {
		_ = m.eps.Delete(b.ID)
	}
	for key, ep := range eps {
		st := m.networks[ep.NetworkID]
		if st == nil || !st.isBridge() {
			_ = m.eps.Delete(key)
			continue
		}
		st.reserve(ep)
		m.pending[key] = ep
	}
	return nil
}

// Restore re-registers one running container after a daemon restart: its
// endpoints (from the store, or rebuilt from req.Endpoints), their DNS
// records, and its published ports (the DNAT rules never went away; the
// host ports are held again). It brings the networks up first. Call it for
// every container whose sandbox is still in use (--network none too), then
// RestoreDone once. An endpoint whose veth is gone is dropped and reported
// as an error (the container has lost that network).
func (m *Manager) Restore(ctx context.Context, req RestoreRequest) error {
	ctx = stateCtx(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.hostLocked(ctx); err != nil {
		return err
	}
	m.restored[req.ContainerID] = true
	var errs []error
	for name, es := range req.Endpoints {
		if es == nil {
			continue
		}
		id := es.NetworkID
		if id == "" {
			id = name
		}
		st, err := m.lookupLocked(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %.12s on %s: %w", req.ContainerID, name, err))
			continue
		}
		if !st.isBridge() {
			continue // host and none have no endpoints
		}
		key := epKey(st.rec.ID, req.ContainerID)
		if _, live := m.endpoints[key]; live {
			continue
		}
		ep := m.pending[key]
		delete(m.pending, key)
		// a stored endpoint the request does not change is not written
		// again: with hundreds of containers a write (and fsync) each
		// was most of a daemon restart
		stored := ep != nil
		if ep == nil {
			if !es.IPAddress.IsValid() && !es.GlobalIPv6Address.IsValid() || len(es.EndpointID) < 12 {
				continue
			}
			ep = &endpointRecord{ID: es.EndpointID, NetworkID: st.rec.ID, IP: es.IPAddress, MAC: es.MacAddress.String(),
				HostVeth: "vb" + es.EndpointID[:12], Aliases: es.Aliases,
				Static: es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid()}
			if st.sub6 != nil {
				ep.IPv6 = es.GlobalIPv6Address
				ep.Static6 = es.IPAMConfig != nil && es.IPAMConfig.IPv6Address.IsValid()
			}
			st.reserve(ep)
		}
		nsPath := ep.NsPath
		if req.NSPath != "" {
			nsPath = req.NSPath
		}
		unchanged := stored && ep.ContainerID == req.ContainerID && ep.ContainerName == req.ContainerName &&
			ep.Hostname == req.Hostname && maps.Equal(ep.Labels, req.Labels) && ep.NsPath == nsPath
		ep.ContainerID, ep.ContainerName, ep.Hostname, ep.Labels, ep.NsPath = req.ContainerID, req.ContainerName, req.Hostname, req.Labels, nsPath
		if _, err := netlink.LinkByName(ep.HostVeth); err != nil {
			removeVethPair(ep)
			st.release(ep)
			_ = m.eps.Delete(key)
			errs = append(errs, fmt.Errorf("restore %.12s on %s: veth %s is gone", req.ContainerID, st.rec.Name, ep.HostVeth))
			continue
		}
		if !unchanged {
			if err := m.eps.Put(key, ep); err != nil {
				errs = append(errs, err)
			}
		}
		m.endpoints[key] = ep
		m.records.Add(m.dnsEndpoint(st, ep))
	}
	if err := m.restorePortsLocked(ctx, req); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// restorePortsLocked holds a restored container's host ports again; ports
// the store lost are rebuilt from req.Ports on the container's first
// endpoint.
func (m *Manager) restorePortsLocked(ctx context.Context, req RestoreRequest) error {
	rec, err := m.portsTbl.Get(req.ContainerID)
	if err != nil {
		rec = &portsRecord{ContainerID: req.ContainerID}
		var ep *endpointRecord
		for _, e := range m.endpoints {
			if e.ContainerID == req.ContainerID && (ep == nil || e.Primary) {
				ep = e
			}
		}
		if ep == nil {
			return nil
		}
		for p, bs := range req.Ports {
			for _, b := range bs {
				hp, _, err := portmap.HostPortRange(b.HostPort)
				if err != nil || hp == 0 {
					continue
				}
				ip := b.HostIP.Unmap()
				if !ip.IsValid() {
					ip = netip.IPv4Unspecified()
				}
				ctrIP := ep.IP
				if ip.Is6() {
					ctrIP = ep.IPv6
				}
				if !ctrIP.IsValid() {
					continue
				}
				rec.Ports = append(rec.Ports, portRecord{HostIP: ip, HostPort: hp, Proto: string(p.Proto()),
					ContainerIP: ctrIP, ContainerPort: p.Num(), Bridge: m.networks[ep.NetworkID].rec.Bridge})
			}
		}
		if len(rec.Ports) == 0 {
			return nil
		}
		if err := m.portsTbl.Put(req.ContainerID, rec); err != nil {
			return err
		}
		defer func() { _ = m.applyLocked(ctx) }()
	}
	for _, p := range rec.Ports {
		if err := m.ports.Reserve(portmap.Key{IP: p.HostIP, Proto: p.Proto, Port: p.HostPort}); err != nil {
			// the rule stays: the container was reachable there before the
			// restart; something else took the socket meanwhile
			logrus.WithError(err).Warnf("network: restore port of %.12s", req.ContainerID)
			continue
		}
		if err := m.forwardLocked(p); err != nil {
			logrus.WithError(err).Warnf("network: restore port of %.12s", req.ContainerID)
		}
	}
	return nil
}

// RestoreDone ends the restore after Restore was called for every running
// container: the endpoints, published ports and sandboxes of every other
// container are released, and the firewall is rewritten. Without it the
// daemon works, but what dead containers held stays reserved.
func (m *Manager) RestoreDone(ctx context.Context) error {
	ctx = stateCtx(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.hostLocked(ctx); err != nil {
		return err
	}
	// the deletions are queued and committed together (one fsync for all
	// the dead endpoints, not one each); the released addresses cannot be
	// handed out before they are committed, since m.mu is held until then
	var deletions []*store.Pending
	for key, ep := range m.pending {
		removeVethPair(ep)
		if st := m.networks[ep.NetworkID]; st != nil {
			st.release(ep)
		}
		deletions = append(deletions, m.eps.QueueDelete(key))
		delete(m.pending, key)
	}
	ports, _, err := m.portsTbl.List()
	if err != nil {
		return err
	}
	for id := range ports {
		if !m.restored[id] {
			deletions = append(deletions, m.portsTbl.QueueDelete(id))
		}
	}
	for _, d := range deletions {
		_ = d.Wait()
	}
	if ents, err := os.ReadDir(m.nsDir); err == nil {
		for _, e := range ents {
			if !m.restored[e.Name()] {
				_ = removeNsFile(filepath.Join(m.nsDir, e.Name()))
			}
		}
	}
	return m.applyLocked(ctx)
}

// Close stops the DNS servers and releases held host ports. When no
// container is attached to any network, it also removes what the daemon put
// on the host (bridges, rules); otherwise that stays, because containers
// keep running across a daemon restart.
func (m *Manager) Close() error {
	m.bg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	idle := len(m.endpoints) == 0 && len(m.pending) == 0
	var errs []error
	for _, st := range m.networks {
		if st.server != nil {
			_ = st.server.Close()
			st.server = nil
		}
		if idle && m.hostUp {
			if err := m.downLocked(st); err != nil {
				errs = append(errs, err)
			}
		}
	}
	m.ports.Close()
	if idle && m.hostUp {
		if err := m.fw.Remove(context.Background()); err != nil {
			errs = append(errs, err)
		}
		_ = removeNsDir(m.nsDir)
		m.nsDirMu.Lock()
		m.nsDirReady = false
		m.nsDirMu.Unlock()
	}
	return errors.Join(errs...)
}

func removeNsDir(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil
	}
	_ = removeNsFile(dir) // unmount the shared self-bind, then rmdir
	return nil
}

// Inventory is what one daemon owns on the host, for tests and leak
// accounting (the inventory's own NetworkState: *Manager is its Network).
type Inventory = inventory.NetworkState

// Inventory lists what the daemon owns on the host right now.
func (m *Manager) Inventory(ctx context.Context) (*Inventory, error) {
	m.bg.Wait() // veths being deleted are not leaks
	m.mu.Lock()
	var bridges []string
	for _, st := range m.networks {
		if st.rec.Driver == "bridge" {
			bridges = append(bridges, st.rec.Bridge)
		}
	}
	endpoints, records := len(m.endpoints), m.records.Len()
	m.mu.Unlock()
	inv, err := InventoryOf(ctx, m.cfg, bridges)
	if err != nil {
		return nil, err
	}
	inv.Endpoints, inv.DNSRecords, inv.Addresses = endpoints, records, m.AllocatedAddresses()
	for _, k := range m.ports.Held() {
		inv.Ports = append(inv.Ports, k.String())
	}
	sort.Strings(inv.Ports)
	return inv, nil
}

// InventoryOf lists, from outside a daemon (an end-to-end test), what the
// daemon with configuration cfg owns on the host, given its networks'
// bridge devices (the default one, and "br-" + the first 12 hex of each user
// network's id unless named by option). Endpoints, DNSRecords, Addresses
// and Ports are only known inside the daemon and stay empty.
func InventoryOf(ctx context.Context, cfg Config, bridges []string) (*Inventory, error) {
	inv := &Inventory{}
	idx := map[int]bool{}
	for _, b := range bridges {
		if l, err := netlink.LinkByName(b); err == nil {
			idx[l.Attrs().Index] = true
			inv.Bridges = append(inv.Bridges, b)
		}
	}
	links, err := redump(netlink.LinkList)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if idx[l.Attrs().MasterIndex] && l.Type() == "veth" {
			inv.Veths = append(inv.Veths, l.Attrs().Name)
		}
	}
	nsDir := filepath.Join(cfg.ExecRoot, "netns")
	if ents, err := os.ReadDir(nsDir); err == nil {
		for _, e := range ents {
			inv.Netns = append(inv.Netns, filepath.Join(nsDir, e.Name()))
		}
	}
	if inv.Rules, err = iptables.New(cfg.Bridge).Rules(ctx); err != nil {
		return nil, err
	}
	for _, s := range [][]string{inv.Bridges, inv.Veths, inv.Netns} {
		sort.Strings(s)
	}
	return inv, nil
}

// PortRules are the DNAT rules among rules (one per published port).
func PortRules(rules []string) []string {
	var out []string
	for _, r := range rules {
		if strings.Contains(r, " -j DNAT ") {
			out = append(out, r)
		}
	}
	return out
}
