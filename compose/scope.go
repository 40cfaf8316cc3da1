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
//  2. Names in the zone (default berth.internal) are daemon-wide, whoever asks:
//     <n>.<service>.<project>.<zone> is replica n, <service>.<project>.<zone>
//     all replicas of the service, <container_name>.<zone> that container
//     (a container name containing dots is tried after the forms above).
//     A name in the zone that matches nothing is NXDOMAIN: the zone is ours,
//     nothing else is asked.
//  3. When A belongs to deployment P (com.docker.compose.project) and P has
//     q — a service named q (running or not: Services knows), or a container
//     of P with the network alias or container name q — q answers P's
//     containers that have it, and only them: never another deployment's
//     addresses, even when that one shares a network with A and carries the
//     same alias there (Docker answers whichever registered last,
//     moby#41961). While P's q is stopped the answer is NXDOMAIN, not the
//     other deployment's q.
//  4. Otherwise Scope does not handle q: the next handler resolves it the
//     way Docker does (aliases and names on A's networks, then upstream).
//     So a deployment reaches another deployment's service by its bare name
//     only when it has no such name itself, and by the FQDN always.
//
// One-off containers (`compose run`) are never answers of rules 2 and 3
// (they are reached by their own container names), but they do ask as
// members of their project. Addresses: a container's addresses on the
// networks it shares with A when there are any, else all its addresses
// (whether they are reachable is up to the networks, as always). Answers are
// ordered by replica number, then address.
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
// answer (rule 4).
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
	if rest, ok := strings.CutSuffix(q, "."+zone); ok {
		return Answer{Addrs: s.zoneLookup(rest, asker, records)}, true
	}
	if q == zone {
		return Answer{}, true
	}
	project := asker.Labels[LabelProject]
	if project == "" {
		return Answer{}, false
	}
	owns := func(r Record) bool {
		k, ok := KeyOf(r.Labels)
		if !ok || k.Project != project || k.OneOff {
			return false
		}
		return strings.EqualFold(k.Service, q) || strings.EqualFold(r.Name, q) || slices.ContainsFunc(r.Aliases, func(a string) bool { return strings.EqualFold(a, q) })
	}
	if !slices.ContainsFunc(records, owns) && (s.Services == nil || !s.Services.HasService(project, q)) {
		return Answer{}, false
	}
	return Answer{Addrs: addrsOf(asker, records, owns)}, true
}

// zoneLookup answers rest.<zone>, rest being lower case.
func (s Scope) zoneLookup(rest string, asker Asker, records []Record) []netip.Addr {
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
	return addrsOf(asker, records, func(r Record) bool { return strings.EqualFold(r.Name, rest) })
}

// addrsOf collects the addresses of the containers that match: per
// container, those on networks shared with the asker when there are any,
// else all of them; ordered by replica number, container, address.
func addrsOf(asker Asker, records []Record, match func(Record) bool) []netip.Addr {
	type ctr struct {
		number      int
		id          string
		shared, all []netip.Addr
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
	}
	ctrs := make([]*ctr, 0, len(byID))
	for _, c := range byID {
		ctrs = append(ctrs, c)
	}
	slices.SortFunc(ctrs, func(a, b *ctr) int { return cmp.Or(cmp.Compare(a.number, b.number), cmp.Compare(a.id, b.id)) })
	var out []netip.Addr
	for _, c := range ctrs {
		addrs := c.all
		if len(c.shared) > 0 {
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
