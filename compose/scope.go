package compose

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berthd/berth/network/dns"
)

// DefaultZone is the daemon DNS zone (berthd --dns-zone).
const DefaultZone = "berth.internal"

// Asker is the container that sent a query.
type Asker struct {
	ContainerID string
	Labels      map[string]string
	Networks    []string // IDs of the networks it has endpoints on
	// Network is the network the query arrived on (resolv.conf names the
	// primary network's gateway); "" when unknown.
	Network string
	// Links maps a link alias to the linked container's name or ID: docker's
	// --link and compose's links:/external_links: (HostConfig.Links,
	// "container:alias"). They are the asker's own names.
	Links map[string]string
	// Sees reports whether a bare name resolves for the asker by Docker's
	// own rules (container names, aliases, short ids and hostnames on its
	// networks: the next handlers). nil: it sees nothing.
	Sees func(name string) bool
}

// Answer is what Scope decided for a query it handled.
type Answer struct {
	// Addrs are the answer; none means NXDOMAIN, unless NoData.
	Addrs []netip.Addr
	// NoData: the name exists for the asker but has no address under this
	// spelling (NOERROR without records); see rule 4.
	NoData bool
}

// Scope is the per-deployment DNS policy. The rule, for a query q (case
// insensitive, trailing dot ignored) from container A, first match wins:
//
//  1. A link alias of A (links:, external_links:, --link) answers the linked
//     container.
//  2. Bare names are scoped. When A belongs to deployment P
//     (com.docker.compose.project) and q is a single label n that P has as
//     a service (running or not: Services knows) or as the network alias or
//     container name of one of P's containers, n answers P's containers that
//     have it, and only them: never another deployment's addresses, even
//     when that one shares a network with A and carries the same alias there
//     (Docker answers whichever registered last, moby#41961). While P's n is
//     stopped, or shares no network with A, the answer is NXDOMAIN, not the
//     other deployment's n.
//  3. Names in the zone (default berth.internal) are daemon-wide, the same
//     whoever asks: <n>.<service>.<project>.<zone> is replica n,
//     <service>.<project>.<zone> all replicas of the service,
//     <container_name>.<zone> that container (a container name may contain
//     dots; the replica and service forms are tried first). Only containers
//     of deployments have such names: a plain `docker run` container is
//     reached by name on its own networks alone, as in Docker.
//  4. The search domains. resolv.conf says "search <P>.<zone> <zone>", and
//     tools such as busybox nslookup ask a bare n under every search domain
//     at once and print each answer. So that n is answered under exactly
//     one of them, for a member of P:
//     - <n>.<zone>, where n is P's own name of rule 2 (and no container
//     name of rule 3), exists without addresses (NODATA): P's n is
//     <n>.<P>.<zone>, and another deployment's n must not leak through
//     the zone form either;
//     - <n>.<P>.<zone>, where P has no service n but n resolves bare for A,
//     answers what bare n answers when n is an alias of P's (nothing else
//     would), and exists without addresses otherwise: a container name
//     of P's is answered as <n>.<zone> (rule 3), a link alias or a name
//     of Docker's rules as <n>.<zone> by the next handlers.
//     Both forms answer only when n is at once P's service and a
//     container_name (`container_name: db` on service db): both are
//     daemon-wide names of rule 3, and rule 3 does not bend to the asker.
//  5. Otherwise Scope does not handle q: the next handlers resolve it the
//     way Docker does (names and aliases on A's networks, bare or as
//     <name>.<zone>), then the zone handler answers NXDOMAIN for the rest of
//     the zone, and upstream resolvers answer the rest. So a deployment
//     reaches another deployment's service by its bare name only when it
//     has no such name itself, and by the FQDN always.
//
// One-off containers (`compose run`) are never answers of rules 2 and 3
// (they are reached by their own container names), but they do ask as
// members of their project.
//
// Which addresses, per container (see Reachable): for a bare name (rules 1
// and 2) only those on networks A is on, the receiving network's alone
// when it has any: never an address A cannot reach. For a zone name (rule
// 3), the receiving network's when there are any, else those on the other
// networks it shares with A, else all of its addresses (a daemon-wide name
// answers whoever asks; whether the address is reachable is up to the
// networks, as always). Answers are ordered by replica number, then
// container, then address, and name each address once.
type Scope struct {
	Zone string // "" means DefaultZone
	// Services knows the services of every deployment, whatever state their
	// containers are in (the Tracker); nil means only the records count.
	Services ServiceSet
}

// ServiceSet says whether a deployment has a service. *Tracker is one.
type ServiceSet interface {
	HasService(project, service string) bool
}

// Lookup applies the rule to q over records, every endpoint the DNS server
// knows (dns.Records' Endpoints, only read). handled is false when the
// next handler must answer (rule 5).
func (s Scope) Lookup(q string, asker Asker, records []dns.Endpoint) (ans Answer, handled bool) {
	q = strings.ToLower(strings.TrimSuffix(q, "."))
	zone := strings.ToLower(strings.Trim(cmp.Or(s.Zone, DefaultZone), "."))
	if q == "" {
		return Answer{}, false
	}
	if target, ok := lookupFold(asker.Links, q); ok {
		if addrs := addrsOf(asker, records, reachable, func(r dns.Endpoint) bool {
			return r.ContainerID == target || strings.EqualFold(r.Name, strings.TrimPrefix(target, "/"))
		}); len(addrs) > 0 {
			return Answer{Addrs: addrs}, true
		}
	}
	name, inZone := strings.CutSuffix(q, "."+zone)
	if !inZone {
		if !strings.Contains(name, ".") {
			if owns, ok := s.owner(name, asker, records); ok {
				return Answer{Addrs: addrsOf(asker, records, reachable, owns)}, true
			}
		}
		return Answer{}, false
	}
	if addrs := zoneLookup(name, asker, records); len(addrs) > 0 {
		return Answer{Addrs: addrs}, true
	}
	return s.searchForms(name, asker, records)
}

// owner is rule 2's test: whether A's deployment has name (a single
// label), and the match for its containers that do.
func (s Scope) owner(name string, asker Asker, records []dns.Endpoint) (func(dns.Endpoint) bool, bool) {
	project := asker.Labels[LabelProject]
	if project == "" {
		return nil, false
	}
	owns := func(r dns.Endpoint) bool {
		k, ok := KeyOf(r.Labels)
		if !ok || k.Project != project || k.OneOff {
			return false
		}
		return strings.EqualFold(k.Service, name) || strings.EqualFold(r.Name, name) || slices.ContainsFunc(r.Aliases, func(a string) bool { return strings.EqualFold(a, name) })
	}
	if !slices.ContainsFunc(records, owns) && (s.Services == nil || !s.Services.HasService(project, name)) {
		return nil, false
	}
	return owns, true
}

// searchForms is rule 4 for rest.<zone> that rule 3 did not answer.
func (s Scope) searchForms(rest string, asker Asker, records []dns.Endpoint) (Answer, bool) {
	project := strings.ToLower(asker.Labels[LabelProject])
	if project == "" {
		return Answer{}, false
	}
	if !strings.Contains(rest, ".") {
		if _, isLink := lookupFold(asker.Links, rest); isLink {
			return Answer{}, false // the next handlers answer a link alias in the zone
		}
		if _, own := s.owner(rest, asker, records); own {
			return Answer{NoData: true}, true
		}
		return Answer{}, false
	}
	n, ok := strings.CutSuffix(rest, "."+project)
	if !ok || n == "" || strings.Contains(n, ".") {
		return Answer{}, false
	}
	if s.hasService(asker.Labels[LabelProject], n, records) {
		return Answer{}, false // rule 3's name, daemon-wide, not a search form
	}
	if _, isLink := lookupFold(asker.Links, n); isLink {
		return Answer{NoData: true}, true
	}
	if owns, own := s.owner(n, asker, records); own {
		addrs := addrsOf(asker, records, reachable, owns)
		if len(addrs) > 0 && containerNamed(records, n) {
			return Answer{NoData: true}, true // <n>.<zone> answers (rule 3)
		}
		if len(addrs) > 0 {
			return Answer{Addrs: addrs}, true // an alias of P's: nothing else answers it
		}
	}
	if asker.Sees != nil && asker.Sees(n) {
		return Answer{NoData: true}, true
	}
	return Answer{}, false
}

// hasService reports whether project has service, running or not.
func (s Scope) hasService(project, service string, records []dns.Endpoint) bool {
	if s.Services != nil && s.Services.HasService(project, service) {
		return true
	}
	return slices.ContainsFunc(records, func(r dns.Endpoint) bool {
		k, ok := KeyOf(r.Labels)
		return ok && !k.OneOff && k.Project == project && strings.EqualFold(k.Service, service)
	})
}

// containerNamed reports whether a deployment's (not one-off) container is
// called name: rule 3's <container_name>.<zone>.
func containerNamed(records []dns.Endpoint, name string) bool {
	return slices.ContainsFunc(records, func(r dns.Endpoint) bool {
		_, inDeployment := KeyOf(r.Labels)
		return inDeployment && strings.EqualFold(r.Name, name)
	})
}

// zoneLookup is rule 3 for rest.<zone>, rest being lower case.
func zoneLookup(rest string, asker Asker, records []dns.Endpoint) []netip.Addr {
	labels := strings.Split(rest, ".")
	replicaOf := func(project, service string, n int) func(dns.Endpoint) bool {
		return func(r dns.Endpoint) bool {
			k, ok := KeyOf(r.Labels)
			return ok && !k.OneOff && strings.EqualFold(k.Project, project) && strings.EqualFold(k.Service, service) && (n == 0 || k.Number == n)
		}
	}
	switch len(labels) {
	case 3:
		if n, err := strconv.Atoi(labels[0]); err == nil && n > 0 {
			if a := addrsOf(asker, records, daemonWide, replicaOf(labels[2], labels[1], n)); len(a) > 0 {
				return a
			}
		}
	case 2:
		if a := addrsOf(asker, records, daemonWide, replicaOf(labels[1], labels[0], 0)); len(a) > 0 {
			return a
		}
	}
	// <container_name>.<zone> names deployments' containers only: a plain
	// container stays reachable by name on its own networks alone, as in Docker
	return addrsOf(asker, records, daemonWide, func(r dns.Endpoint) bool {
		_, inDeployment := KeyOf(r.Labels)
		return inDeployment && strings.EqualFold(r.Name, rest)
	})
}

// reach says which of a container's addresses an answer gives.
type reach int

const (
	// reachable: only addresses on networks the asker is on (bare names).
	reachable reach = iota
	// daemonWide: those when there are any, else every address (zone names).
	daemonWide
)

// addrsOf collects the addresses of the containers that match: per
// container, those on the receiving network, else on the other networks
// shared with the asker, else (daemonWide only) all of them; ordered by
// replica number, container, address, each address once.
func addrsOf(asker Asker, records []dns.Endpoint, want reach, match func(dns.Endpoint) bool) []netip.Addr {
	type ctr struct {
		number            int
		id                string
		here, shared, all []netip.Addr
	}
	byID := map[string]*ctr{}
	for _, r := range records {
		if !match(r) {
			continue
		}
		c := byID[r.ContainerID]
		if c == nil {
			k, _ := KeyOf(r.Labels)
			c = &ctr{number: k.Number, id: r.ContainerID}
			byID[r.ContainerID] = c
		}
		addrs := r.Addrs()
		c.all = append(c.all, addrs...)
		if slices.Contains(asker.Networks, r.NetworkID) {
			c.shared = append(c.shared, addrs...)
		}
		if asker.Network != "" && r.NetworkID == asker.Network {
			c.here = append(c.here, addrs...)
		}
	}
	ctrs := make([]*ctr, 0, len(byID))
	for _, c := range byID {
		ctrs = append(ctrs, c)
	}
	slices.SortFunc(ctrs, func(a, b *ctr) int { return cmp.Or(cmp.Compare(a.number, b.number), cmp.Compare(a.id, b.id)) })
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, c := range ctrs {
		addrs := c.shared
		if len(c.here) > 0 {
			addrs = c.here
		} else if len(addrs) == 0 && want == daemonWide {
			addrs = c.all
		}
		addrs = slices.Clone(addrs)
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func lookupFold(m map[string]string, k string) (string, bool) {
	for key, v := range m {
		if strings.EqualFold(key, k) {
			return v, true
		}
	}
	return "", false
}
