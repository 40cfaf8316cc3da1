// Package dns is berth's embedded DNS server: one listener per bridge on
// the gateway address, answering through a CoreDNS-style chain of handlers.
// Each handler answers what it knows and passes the query on to the next
// one. berth's own chain is
//
//	[plugins from the daemon's config, e.g. compose scoping] -> Names (container
//	names, aliases, short ids, hostnames on the asker's networks) -> Zone
//	(NXDOMAIN for unknown names in the daemon zone) -> Forward (the host's
//	upstream resolvers)
//
// Handlers see the asking container (found by source address) and a
// read-only view of every endpoint's records through the request context.
package dns

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Handler answers a query or passes it on. As in CoreDNS, the returned rcode
// says who writes the answer: for dns.RcodeServerFailure, RcodeRefused,
// RcodeFormatError and RcodeNotImplemented the server writes an error reply
// (the handler wrote nothing); for any other rcode the handler has written
// the reply itself.
type Handler interface {
	Name() string
	ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)
}

// Plugin wraps the rest of the chain in a handler.
type Plugin func(next Handler) Handler

// Chain builds a handler from plugins, outermost first. The end of the chain
// answers SERVFAIL.
func Chain(plugins ...Plugin) Handler {
	var h Handler = failure{}
	for i := len(plugins) - 1; i >= 0; i-- {
		h = plugins[i](h)
	}
	return h
}

// NextOrFailure calls next, or answers SERVFAIL when there is no next.
func NextOrFailure(ctx context.Context, next Handler, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if next == nil {
		return dns.RcodeServerFailure, nil
	}
	return next.ServeDNS(ctx, w, r)
}

// ClientWrite reports whether rcode means the handler wrote the reply.
func ClientWrite(rcode int) bool {
	switch rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented:
		return false
	}
	return true
}

type failure struct{}

func (failure) Name() string { return "failure" }
func (failure) ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
	return dns.RcodeServerFailure, nil
}

// Request is what the server knows about a query beyond its message.
type Request struct {
	// Network is the ID of the network whose gateway received the query.
	Network string
	// Internal is set when that network has no way out.
	Internal bool
	// Source is the asker's address.
	Source netip.Addr
	// Asker is the asking container's endpoint on Network, when the source
	// is one (the host or an unknown peer leaves it nil).
	Asker *Endpoint
	// Zone is the daemon's DNS zone without dots at the ends ("berth.internal").
	Zone string
	// Records is the read-only view of every endpoint.
	Records Records
}

type requestKey struct{}

// WithRequest stores req in ctx.
func WithRequest(ctx context.Context, req *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// RequestFrom returns the request stored in ctx; a query without one (in a
// test, say) gets an empty request.
func RequestFrom(ctx context.Context) *Request {
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		return r
	}
	return &Request{Records: NewTable()}
}

// AskerNetworks is the set of network IDs the asker is attached to: every
// network of the asking container, or the receiving network alone when the
// asker is not a known container.
func (r *Request) AskerNetworks() map[string]bool {
	nets := map[string]bool{}
	if r.Network != "" {
		nets[r.Network] = true
	}
	if r.Asker != nil && r.Records != nil {
		for _, ep := range r.Records.ByContainer(r.Asker.ContainerID) {
			nets[ep.NetworkID] = true
		}
	}
	return nets
}

// NoEgress reports whether the asker has no way out for forwarded queries:
// the network the query came in on is internal, and so is every other
// network of the asking container (an unknown asker has only the receiving
// network).
func (r *Request) NoEgress() bool {
	if !r.Internal {
		return false
	}
	if r.Asker == nil || r.Records == nil {
		return true
	}
	for _, ep := range r.Records.ByContainer(r.Asker.ContainerID) {
		if !ep.Internal {
			return false
		}
	}
	return true
}

// Normalize lowercases a query name and drops the final dot.
func Normalize(qname string) string {
	return strings.TrimSuffix(strings.ToLower(qname), ".")
}

// InZone reports whether name (normalized) is zone or below it, and returns
// the part before the zone ("db.shop" for "db.shop.berth.internal").
func InZone(name, zone string) (string, bool) {
	if zone == "" {
		return "", false
	}
	if name == zone {
		return "", true
	}
	if rest, ok := strings.CutSuffix(name, "."+zone); ok {
		return rest, true
	}
	return "", false
}
