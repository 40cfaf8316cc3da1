package network

import "net/netip"

// DNSServer is where berth's DNS server answers a container whose primary
// network is primaryNetwork (id or name): that network's gateway (the IPv6
// one on an IPv6-only network); unknown or non-bridge networks fall back
// to the default bridge's.
func (m *Manager) DNSServer(primaryNetwork string) netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(primaryNetwork)
	if err != nil || st.rec.Driver != "bridge" {
		st = nil
		for _, s := range m.networks {
			if s.rec.Predefined && s.rec.Name == "bridge" {
				st = s
			}
		}
	}
	if st == nil {
		return netip.Addr{}
	}
	return st.dnsAddr()
}
