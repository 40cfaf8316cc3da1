package dns

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Endpoint is one container's presence on one network, as DNS sees it.
type Endpoint struct {
	ContainerID string
	Name        string // container name without the leading "/"
	Hostname    string
	Aliases     []string // network aliases (--network-alias, compose service names)
	// IP and IPv6 are the endpoint's addresses; either is the zero Addr on
	// a network without that family.
	IP, IPv6    netip.Addr
	NetworkID   string
	NetworkName string
	Internal    bool
	Labels      map[string]string // the container's labels
	// Links maps this container's link aliases to the linked containers'
	// names or ids: names only this container resolves.
	Links map[string]string
	// Upstreams are the container's own resolvers (--dns, compose dns:),
	// asked instead of the daemon's for names berth does not know.
	Upstreams []netip.AddrPort
	// NsPath is the container's network namespace, where loopback
	// upstreams of its own are reached.
	NsPath string
}

// Names are the names the endpoint answers to on its network, in Docker's
// DNSNames order (moby's buildEndpointDNSNames): name, aliases, short id,
// hostname, without duplicates. The first one names PTR answers.
func (e Endpoint) Names() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(e.Name)
	for _, a := range e.Aliases {
		add(a)
	}
	if len(e.ContainerID) >= 12 {
		add(e.ContainerID[:12])
	}
	add(e.Hostname)
	return out
}

// Addrs are the endpoint's valid addresses, IPv4 first.
func (e Endpoint) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{e.IP, e.IPv6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// Has reports whether ip is one of the endpoint's addresses.
func (e Endpoint) Has(ip netip.Addr) bool {
	return ip.IsValid() && (e.IP == ip || e.IPv6 == ip)
}

// Records is the read-only view of the daemon's endpoints that handlers
// (and plugins such as compose scoping) query. Every method but Endpoints
// returns copies.
type Records interface {
	// Endpoints returns every endpoint, sorted. The slice is shared by every
	// caller until the next change (every DNS query reads it): callers must
	// not modify it, nor the endpoints' slices and maps.
	Endpoints() []Endpoint
	// ByContainer returns the endpoints of one container.
	ByContainer(containerID string) []Endpoint
	// ByNetwork returns the endpoints on one network.
	ByNetwork(networkID string) []Endpoint
	// ByIP returns the endpoint with ip (IPv4 or IPv6) on network networkID.
	ByIP(networkID string, ip netip.Addr) (Endpoint, bool)
	// Named returns the endpoints one of whose Names is name (ASCII case
	// ignored), in Endpoints' order.
	Named(name string) []Endpoint
}

// Table is the concurrency-safe Records the network package fills. Every
// DNS query asks it who asked (ByIP) and who has the name (Named): both are
// answered from indexes, so a query costs the same with 10 containers as
// with 1000; only Endpoints (PTR, links, compose scoping) walks them all.
type Table struct {
	mu  sync.RWMutex
	eps map[string]map[string]Endpoint // network -> container -> endpoint
	// snap is Endpoints' answer, built on first use after a change
	snap []Endpoint
	// byIP: network and address -> the containers holding it (one, unless
	// a store was damaged)
	byIP map[netAddr][]string
	// byName: lower-case name -> the endpoints that answer to it
	byName map[string]map[epRef]struct{}
}

type netAddr struct {
	network string
	ip      netip.Addr
}

type epRef struct{ network, container string }

var _ Records = (*Table)(nil)

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{eps: map[string]map[string]Endpoint{}, byIP: map[netAddr][]string{}, byName: map[string]map[epRef]struct{}{}}
}

// Add adds or replaces the endpoint of ep.ContainerID on ep.NetworkID.
func (t *Table) Add(ep Endpoint) {
	ep = clone(ep)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unindexLocked(ep.NetworkID, ep.ContainerID)
	if t.eps[ep.NetworkID] == nil {
		t.eps[ep.NetworkID] = map[string]Endpoint{}
	}
	t.eps[ep.NetworkID][ep.ContainerID] = ep
	for _, a := range ep.Addrs() {
		k := netAddr{ep.NetworkID, a}
		t.byIP[k] = append(t.byIP[k], ep.ContainerID)
	}
	ref := epRef{ep.NetworkID, ep.ContainerID}
	for _, n := range ep.Names() {
		n = strings.ToLower(n)
		if t.byName[n] == nil {
			t.byName[n] = map[epRef]struct{}{}
		}
		t.byName[n][ref] = struct{}{}
	}
	t.snap = nil
}

// Remove drops a container's endpoint on a network; a missing one is fine.
func (t *Table) Remove(networkID, containerID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unindexLocked(networkID, containerID)
	delete(t.eps[networkID], containerID)
	if len(t.eps[networkID]) == 0 {
		delete(t.eps, networkID)
	}
	t.snap = nil
}

// unindexLocked drops the index entries of the endpoint that is there now.
func (t *Table) unindexLocked(networkID, containerID string) {
	old, ok := t.eps[networkID][containerID]
	if !ok {
		return
	}
	for _, a := range old.Addrs() {
		k := netAddr{networkID, a}
		if ids := slices.DeleteFunc(t.byIP[k], func(id string) bool { return id == containerID }); len(ids) > 0 {
			t.byIP[k] = ids
		} else {
			delete(t.byIP, k)
		}
	}
	ref := epRef{networkID, containerID}
	for _, n := range old.Names() {
		n = strings.ToLower(n)
		delete(t.byName[n], ref)
		if len(t.byName[n]) == 0 {
			delete(t.byName, n)
		}
	}
}

// Len is the number of endpoints.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, m := range t.eps {
		n += len(m)
	}
	return n
}

func (t *Table) Endpoints() []Endpoint {
	t.mu.RLock()
	snap := t.snap
	t.mu.RUnlock()
	if snap != nil {
		return snap
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.snap == nil {
		out := []Endpoint{}
		for _, m := range t.eps {
			for _, ep := range m {
				out = append(out, clone(ep))
			}
		}
		sortEndpoints(out)
		t.snap = out
	}
	return t.snap
}

func (t *Table) ByContainer(id string) []Endpoint {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Endpoint
	for _, m := range t.eps {
		if ep, ok := m[id]; ok {
			out = append(out, clone(ep))
		}
	}
	sortEndpoints(out)
	return out
}

func (t *Table) ByNetwork(networkID string) []Endpoint {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Endpoint, 0, len(t.eps[networkID]))
	for _, ep := range t.eps[networkID] {
		out = append(out, clone(ep))
	}
	sortEndpoints(out)
	return out
}

func (t *Table) ByIP(networkID string, ip netip.Addr) (Endpoint, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ids := t.byIP[netAddr{networkID, ip}]
	if len(ids) == 0 || !ip.IsValid() {
		return Endpoint{}, false
	}
	return clone(t.eps[networkID][ids[0]]), true
}

// Named returns copies of the endpoints named name. The names indexed are
// lower-cased with strings.ToLower: DNS names are ASCII.
func (t *Table) Named(name string) []Endpoint {
	t.mu.RLock()
	defer t.mu.RUnlock()
	refs := t.byName[strings.ToLower(name)]
	if len(refs) == 0 {
		return nil
	}
	out := make([]Endpoint, 0, len(refs))
	for r := range refs {
		out = append(out, clone(t.eps[r.network][r.container]))
	}
	sortEndpoints(out)
	return out
}

func clone(ep Endpoint) Endpoint {
	ep.Aliases = slices.Clone(ep.Aliases)
	ep.Labels = maps.Clone(ep.Labels)
	ep.Upstreams = slices.Clone(ep.Upstreams)
	return ep
}

func sortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		if c := a.IPv6.Compare(b.IPv6); c != 0 {
			return c
		}
		if a.NetworkID < b.NetworkID {
			return -1
		}
		if a.NetworkID > b.NetworkID {
			return 1
		}
		return 0
	})
}
