package dns

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// TTL of berth's own answers; dockerd uses 600 too. Containers come and go,
// but an IP stays with its container while it runs.
const TTL = 600

// Names answers for containers on the asker's networks: container names,
// network aliases, short (12 hex) ids and hostnames, as bare names or in the
// daemon zone ("web" and "web.berth.internal"), dots and all (an alias
// "pingtarget.docker"). A names the IPv4 addresses
// of all matching endpoints, AAAA their IPv6 addresses (several containers
// with one alias: every address, in an order rotated per query); a type the
// name has no address of, and any other type, is an empty NOERROR.
// Endpoints on the network that received the query win over the asker's
// other networks. PTR queries for those addresses (in-addr.arpa and
// ip6.arpa) answer the container name.
func Names() Plugin {
	return func(next Handler) Handler { return &names{next: next} }
}

type names struct {
	next Handler
	rr   atomic.Uint64
}

func (h *names) Name() string { return "names" }

func (h *names) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return NextOrFailure(ctx, h.next, w, r)
	}
	req := RequestFrom(ctx)
	q := r.Question[0]
	name := Normalize(q.Name)
	if q.Qtype == dns.TypePTR {
		return h.ptr(ctx, req, w, r, name)
	}
	if rest, ok := InZone(name, req.Zone); ok {
		name = rest
	}
	if name == "" {
		return NextOrFailure(ctx, h.next, w, r)
	}
	// names may have dots (an alias "pingtarget.docker", a container
	// "web.1"): Docker answers them as they are
	ips := linked(req, name)
	if len(ips) == 0 {
		ips = Lookup(req, name)
	}
	if len(ips) == 0 {
		return NextOrFailure(ctx, h.next, w, r)
	}
	return WriteAnswer(w, r, AddrRecords(q, Rotate(ips, h.rr.Add(1))))
}

// AddrRecords are the answers to q from ips: A records of the IPv4 ones for
// A, AAAA records of the IPv6 ones for AAAA, both for ANY, none otherwise.
func AddrRecords(q dns.Question, ips []netip.Addr) []dns.RR {
	var rrs []dns.RR
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		rrs = ARecords(q.Name, ips)
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		rrs = append(rrs, AAAARecords(q.Name, ips)...)
	}
	return rrs
}

// Lookup returns the addresses of endpoints named name (normalized, without
// the zone) on the asker's networks, those on the receiving network first
// and alone when there are any.
func Lookup(req *Request, name string) []netip.Addr {
	if req.Records == nil {
		return nil
	}
	nets := req.AskerNetworks()
	var here, elsewhere []netip.Addr
	for _, ep := range req.Records.Named(name) {
		if !nets[ep.NetworkID] {
			continue
		}
		if ep.NetworkID == req.Network {
			here = append(here, ep.Addrs()...)
		} else {
			elsewhere = append(elsewhere, ep.Addrs()...)
		}
	}
	if len(here) > 0 {
		return dedup(here)
	}
	return dedup(elsewhere)
}

func dedup(ips []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	out := ips[:0]
	for _, ip := range ips {
		if !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	return out
}

// Rotate returns ips rotated left by n (round robin between queries).
func Rotate(ips []netip.Addr, n uint64) []netip.Addr {
	if len(ips) < 2 {
		return ips
	}
	k := int(n % uint64(len(ips)))
	return append(append([]netip.Addr(nil), ips[k:]...), ips[:k]...)
}

// ARecords builds A records for qname.
func ARecords(qname string, ips []netip.Addr) []dns.RR {
	out := make([]dns.RR, 0, len(ips))
	for _, ip := range ips {
		if !ip.Is4() {
			continue
		}
		out = append(out, &dns.A{
			Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL},
			A:   ip.AsSlice(),
		})
	}
	return out
}

// AAAARecords builds AAAA records for qname from the IPv6 addresses of ips.
func AAAARecords(qname string, ips []netip.Addr) []dns.RR {
	var out []dns.RR
	for _, ip := range ips {
		if !ip.Is6() || ip.Is4In6() {
			continue
		}
		out = append(out, &dns.AAAA{
			Hdr:  dns.RR_Header{Name: qname, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: TTL},
			AAAA: ip.AsSlice(),
		})
	}
	return out
}

// WriteAnswer writes an authoritative NOERROR reply with answers (possibly
// none: a known name without records of the asked type).
func WriteAnswer(w dns.ResponseWriter, r *dns.Msg, answers []dns.RR) (int, error) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Answer = answers
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

func (h *names) ptr(ctx context.Context, req *Request, w dns.ResponseWriter, r *dns.Msg, name string) (int, error) {
	ip, ok := reverseV4(name)
	if !ok {
		ip, ok = reverseV6(name)
	}
	if !ok || req.Records == nil {
		return NextOrFailure(ctx, h.next, w, r)
	}
	var eps []Endpoint
	for n := range req.AskerNetworks() {
		if ep, ok := req.Records.ByIP(n, ip); ok {
			eps = append(eps, ep)
		}
	}
	sortEndpoints(eps) // the first by network, as Endpoints' order gave
	for _, ep := range eps {
		if ep.Name == "" {
			continue
		}
		target := dns.Fqdn(ep.Name)
		if ep.NetworkName != "" {
			target = dns.Fqdn(ep.Name + "." + ep.NetworkName)
		}
		return WriteAnswer(w, r, []dns.RR{&dns.PTR{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL},
			Ptr: target,
		}})
	}
	return NextOrFailure(ctx, h.next, w, r)
}

// reverseV4 reads "4.3.2.1.in-addr.arpa" as 1.2.3.4.
func reverseV4(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	p := strings.Split(rest, ".")
	if len(p) != 4 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
	return ip, err == nil && ip.Is4()
}

// reverseV6 reads the 32 nibbles of "...ip6.arpa" as an IPv6 address.
func reverseV6(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".ip6.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	p := strings.Split(rest, ".")
	if len(p) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, nib := range p {
		if len(nib) != 1 {
			return netip.Addr{}, false
		}
		v := strings.IndexByte("0123456789abcdef", nib[0])
		if v < 0 {
			return netip.Addr{}, false
		}
		pos := 31 - i // the first label is the lowest nibble
		if pos%2 == 0 {
			b[pos/2] |= byte(v) << 4
		} else {
			b[pos/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b), true
}

// Zone answers NXDOMAIN, authoritatively, for names in the daemon zone that
// no handler before it knew: they must never leak to the upstream resolvers.
func Zone() Plugin {
	return func(next Handler) Handler { return &zone{next: next} }
}

type zone struct{ next Handler }

func (h *zone) Name() string { return "zone" }

func (h *zone) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := RequestFrom(ctx)
	if len(r.Question) == 1 {
		if _, ok := InZone(Normalize(r.Question[0].Name), req.Zone); ok {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeNameError)
			m.Authoritative = true
			m.RecursionAvailable = true
			if err := w.WriteMsg(m); err != nil {
				return dns.RcodeServerFailure, err
			}
			return dns.RcodeNameError, nil
		}
	}
	return NextOrFailure(ctx, h.next, w, r)
}

// linked answers a link alias of the asking container (--link db:database)
// with the linked container's addresses on the asker's networks.
func linked(req *Request, alias string) []netip.Addr {
	if req.Asker == nil || req.Records == nil {
		return nil
	}
	target, ok := req.Asker.Links[alias]
	if !ok {
		return nil
	}
	nets := req.AskerNetworks()
	var ips []netip.Addr
	for _, ep := range req.Records.Endpoints() {
		if (ep.Name == target || ep.ContainerID == target) && nets[ep.NetworkID] {
			ips = append(ips, ep.Addrs()...)
		}
	}
	return ips
}
