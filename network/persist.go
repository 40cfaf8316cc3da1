package network

import (
	"errors"

	"github.com/berthd/berth/store"
	"github.com/sirupsen/logrus"
)

// Persistence order. The manager's lock (m.mu) guards memory: IPAM, the
// endpoint and DNS tables, held ports. Store writes are queued under it (so
// that their order is the order of the changes) and waited for after it is
// released, so that no request waits on another's fsync and concurrent
// writes share one (store's group commit). The rule that keeps this
// crash-safe:
//
//	the store never shows an address free while an interface may hold it.
//
// So a detach deletes the endpoint's record only after its veth pair is
// gone, and releases the address in memory only after that deletion is
// committed: a crash at any point leaves the record (and the address
// reserved) until the next daemon's Restore or RestoreDone, which deletes
// the pair first. Attach queues the record of a new endpoint before the
// lock is released and answers only when it is committed; a crash before
// that leaves an interface without a record only in the sandbox of a
// container that never started, and the next daemon removes that sandbox
// (RestoreDone), which takes the interface with it. Published ports go
// the same way: rules and held sockets first, the record after.

// forget ends a detach whose veth pair is gone: the record is deleted,
// then the address released. If the container was attached to the network
// again meanwhile (same key), its new record stays.
func (m *Manager) forget(st *netState, key string, ep *endpointRecord) {
	m.mu.Lock()
	var deleted *store.Pending
	if _, again := m.endpoints[key]; !again {
		deleted = m.eps.QueueDelete(key)
	}
	m.mu.Unlock()
	if err := deleted.Wait(); err != nil {
		// the record stays and claims the address: safe, and the next
		// RestoreDone deletes it
		logrus.WithError(err).Warnf("network: delete endpoint record %s", key)
	}
	if m.afterDelete != nil {
		m.afterDelete(key)
	}
	m.mu.Lock()
	st.release(ep)
	m.mu.Unlock()
}

// waitAll waits for queued writes.
func waitAll(writes []*store.Pending) error {
	var errs []error
	for _, w := range writes {
		errs = append(errs, w.Wait())
	}
	return errors.Join(errs...)
}
