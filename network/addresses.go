package network

import "github.com/berthd/berth/network/ipam"

// AllocatedAddresses counts the container addresses allocated in the
// daemon's subnets (gateways not counted), for leak accounting: it must
// come back to zero when no container is attached anywhere.
func (m *Manager) AllocatedAddresses() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, st := range m.networks {
		for _, sub := range []*ipam.Subnet{st.sub, st.sub6} {
			if sub != nil {
				n += sub.InUse()
			}
		}
	}
	return n
}
