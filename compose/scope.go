package compose

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultZone is the daemon DNS zone (berthd --dns-zone).
const DefaultZone = "berth.internal"

// Record is one container endpoint on one network, as the DNS server knows it.
type Record struct {
	ContainerID string
	Name        string            // container name, without "/"
	Network     string            // network ID
	Aliases     []string          // DNS aliases of the endpoint on this network
	Addrs       []netip.Addr      // the endpoint's addresses (IPv4 and IPv6)
	Labels      map[string]string // the container's labels
}

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
}

// Answer is what Scope decided for a query it handled.
type Answer struct {
	Addrs []netip.Addr // empty: the name does not exist (NXDOMAIN)
}

// Scope is the per-deployment DNS policy. The rule, for a query q (case
// insensitive, trailing dot ignored) from container A:
//
//  1. A link alias of A (links:, external_links:, --link) answers the linked
//     container.
//  2. When A belongs to deployment P (com.docker.compose.project) and P has
//     the name n — q itself, or q less the zone (<n>.berth.internal) — as a
//     service (running or not: Services knows) or as the network alias or
//     container name of one of P's containers, n answers P's containers that
//     have it, and only them: never another deployment's addresses, even
//     when that one shares a network with A and carries the same alias there
//     (Docker answers whichever registered last, moby#41961). While P's n is
//     stopped the answer is NXDOMAIN, not the other deployment's n.
//  3. Names in the zone (default berth.internal) are daemon-wide, whoever
//     asks: <n>.<service>.<project>.<zone> is replica n,
//     <service>.<project>.<zone> all replicas of the service,
//     <container_name>.<zone> that container (a container name may contain
//     dots; the replica and service forms are tried first). Only containers
//     of deployments have zone names: a plain `docker run` container is
//     reached by name on its own networks alone, as in Docker.
//  4. Otherwise Scope does not handle q: the next handlers resolve it the
//     way Docker does (names and aliases on A's networks), then the zone
//     handler answers NXDOMAIN for the rest of the zone, and upstream
//     resolvers answer the rest. So a deployment reaches another
//     deployment's service by its bare name only when it has no such name
//     itself, and by the FQDN always.
//
// With resolv.conf's "search <P>.berth.internal berth.internal", a bare
// "db" is first asked as db.<P>.berth.internal: rule 3 gives P's db, as
// rule 2 does for "db" itself.
//
// One-off containers (`compose run`) are never answers of rules 2 and 3
// (they are reached by their own container names), but they do ask as
// members of their project. Addresses, per container: those on the network
// the query arrived on when there are any, else those on the other networks
// it shares with A, else all of them (whether they are reachable is up to the
// networks, as always) — Docker's preference, and the network handler's.
// Answers are ordered by replica number, then address.
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

// Lookup applies the rule to q. handled is false when the next handler must
// answer (rule 4); a handled answer without addresses is NXDOMAIN.
func (s Scope) Lookup(q string, asker Asker, records []Record) (ans Answer, handled bool) {
	q = strings.ToLower(strings.TrimSuffix(q, "."))
	zone := strings.ToLower(strings.Trim(cmp.Or(s.Zone, DefaultZone), "."))
	if q == "" {
		return Answer{}, false
	}
	if target, ok := lookupFold(asker.Links, q); ok {
		if addrs := addrsOf(asker, records, func(r Record) bool {
			return r.ContainerID == target || strings.EqualFold(r.Name, strings.TrimPrefix(target, "/"))
		}); len(addrs) > 0 {
			return Answer{Addrs: addrs}, true
		}
	}
	name, inZone := strings.CutSuffix(q, "."+zone)
	if !strings.Contains(name, ".") {
		if addrs, ok := s.deploymentLookup(name, asker, records); ok {
			return Answer{Addrs: addrs}, true
		}
	}
	if !inZone {
		return Answer{}, false
	}
	if addrs := zoneLookup(name, asker, records); len(addrs) > 0 {
		return Answer{Addrs: addrs}, true
	}
	return Answer{}, false
}

// deploymentLookup is rule 2 for a single-label name.
func (s Scope) deploymentLookup(name string, asker Asker, records []Record) ([]netip.Addr, bool) {
	project := asker.Labels[LabelProject]
	if project == "" {
		return nil, false
	}
	owns := func(r Record) bool {
		k, ok := KeyOf(r.Labels)
		if !ok || k.Project != project || k.OneOff {
			return false
		}
		return strings.EqualFold(k.Service, name) || strings.EqualFold(r.Name, name) || slices.ContainsFunc(r.Aliases, func(a string) bool { return strings.EqualFold(a, name) })
	}
	if !slices.ContainsFunc(records, owns) && (s.Services == nil || !s.Services.HasService(project, name)) {
		return nil, false
	}
	return addrsOf(asker, records, owns), true
}

// zoneLookup is rule 3 for rest.<zone>, rest being lower case.
func zoneLookup(rest string, asker Asker, records []Record) []netip.Addr {
	labels := strings.Split(rest, ".")
	replicaOf := func(project, service string, n int) func(Record) bool {
		return func(r Record) bool {
			k, ok := KeyOf(r.Labels)
			return ok && !k.OneOff && strings.EqualFold(k.Project, project) && strings.EqualFold(k.Service, service) && (n == 0 || k.Number == n)
		}
	}
	switch len(labels) {
	case 3:
		if n, err := strconv.Atoi(labels[0]); err == nil && n > 0 {
			if a := addrsOf(asker, records, replicaOf(labels[2], labels[1], n)); len(a) > 0 {
				return a
			}
		}
	case 2:
		if a := addrsOf(asker, records, replicaOf(labels[1], labels[0], 0)); len(a) > 0 {
			return a
		}
	}
	// <container_name>.<zone> names deployments' containers only: a plain
	// container stays reachable by name on its own networks alone, as in Docker
	return addrsOf(asker, records, func(r Record) bool {
		_, inDeployment := KeyOf(r.Labels)
		return inDeployment && strings.EqualFold(r.Name, rest)
	})
}

// addrsOf collects the addresses of the containers that match: per
// container, those on the receiving network, else on the other networks
// shared with the asker, else all of them; ordered by replica number,
// container, address.
func addrsOf(asker Asker, records []Record, match func(Record) bool) []netip.Addr {
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
		c.all = append(c.all, r.Addrs...)
		if slices.Contains(asker.Networks, r.Network) {
			c.shared = append(c.shared, r.Addrs...)
		}
		if asker.Network != "" && r.Network == asker.Network {
			c.here = append(c.here, r.Addrs...)
		}
	}
	ctrs := make([]*ctr, 0, len(byID))
	for _, c := range byID {
		ctrs = append(ctrs, c)
	}
	slices.SortFunc(ctrs, func(a, b *ctr) int { return cmp.Or(cmp.Compare(a.number, b.number), cmp.Compare(a.id, b.id)) })
	var out []netip.Addr
	for _, c := range ctrs {
		addrs := c.all
		if len(c.here) > 0 {
			addrs = c.here
		} else if len(c.shared) > 0 {
			addrs = c.shared
		}
		addrs = slices.Clone(addrs)
		slices.SortFunc(addrs, netip.Addr.Compare)
		out = append(out, slices.Compact(addrs)...)
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
