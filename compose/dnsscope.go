package compose

import (
	"context"
	"sync/atomic"

	"github.com/berthd/berth/network/dns"
	mdns "github.com/miekg/dns"
)

// DNSPlugin puts Scope into berth's embedded DNS chain (network.Deps
// DNSPlugins), in front of the network's own handlers. services is what
// knows every deployment's services (the Tracker). It answers A, AAAA and
// ANY queries that Scope handles and passes everything else on.
func DNSPlugin(services ServiceSet) dns.Plugin {
	return func(next dns.Handler) dns.Handler { return &dnsScope{next: next, services: services} }
}

type dnsScope struct {
	next     dns.Handler
	services ServiceSet
	rr       atomic.Uint64
	// cache is Scope's records of the last endpoint snapshot: the table
	// answers every query with the same snapshot until an endpoint
	// changes, so the records are built once per change, not per query
	cache atomic.Pointer[scopeRecords]
}

type scopeRecords struct {
	snap []dns.Endpoint // holds the snapshot, so its address is not reused
	recs []Record
}

// records are Scope's view of eps, a snapshot from Records.Endpoints
// (shared and never changed by its readers).
func (h *dnsScope) records(eps []dns.Endpoint) []Record {
	if c := h.cache.Load(); c != nil && len(c.snap) == len(eps) && (len(eps) == 0 || &c.snap[0] == &eps[0]) {
		return c.recs
	}
	recs := make([]Record, 0, len(eps))
	for _, ep := range eps {
		recs = append(recs, Record{
			ContainerID: ep.ContainerID, Name: ep.Name, Network: ep.NetworkID,
			Aliases: ep.Aliases, Addrs: ep.Addrs(), Labels: ep.Labels,
		})
	}
	h.cache.Store(&scopeRecords{snap: eps, recs: recs})
	return recs
}

func (h *dnsScope) Name() string { return "compose" }

func (h *dnsScope) ServeDNS(ctx context.Context, w mdns.ResponseWriter, r *mdns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return dns.NextOrFailure(ctx, h.next, w, r)
	}
	q := r.Question[0]
	if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeAAAA && q.Qtype != mdns.TypeANY {
		return dns.NextOrFailure(ctx, h.next, w, r)
	}
	req := dns.RequestFrom(ctx)
	if req.Records == nil {
		return dns.NextOrFailure(ctx, h.next, w, r)
	}
	asker := Asker{Network: req.Network}
	for id := range req.AskerNetworks() {
		asker.Networks = append(asker.Networks, id)
	}
	if req.Asker != nil {
		asker.ContainerID, asker.Labels, asker.Links = req.Asker.ContainerID, req.Asker.Labels, req.Asker.Links
	}
	asker.Sees = func(name string) bool { return len(dns.Lookup(req, name)) > 0 }
	records := h.records(req.Records.Endpoints())
	ans, handled := Scope{Zone: req.Zone, Services: h.services}.Lookup(q.Name, asker, records)
	if !handled {
		return dns.NextOrFailure(ctx, h.next, w, r)
	}
	if ans.NoData {
		return dns.WriteAnswer(w, r, nil)
	}
	if len(ans.Addrs) == 0 {
		m := new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeNameError)
		m.Authoritative, m.RecursionAvailable = true, true
		if err := w.WriteMsg(m); err != nil {
			return mdns.RcodeServerFailure, err
		}
		return mdns.RcodeNameError, nil
	}
	addrs := dns.Rotate(ans.Addrs, h.rr.Add(1))
	var rrs []mdns.RR
	if q.Qtype != mdns.TypeAAAA {
		rrs = dns.ARecords(q.Name, addrs)
	}
	if q.Qtype != mdns.TypeA {
		for _, ip := range addrs {
			if ip.Is6() && !ip.Is4In6() {
				rrs = append(rrs, &mdns.AAAA{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: dns.TTL}, AAAA: ip.AsSlice()})
			}
		}
	}
	return dns.WriteAnswer(w, r, rrs)
}
