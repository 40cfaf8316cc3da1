package compose

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berthd/berth/network/dns"
	mdns "github.com/miekg/dns"
)

// The model-based test of berth's DNS rules: random topologies (projects,
// services with replicas, one-offs, container_name, aliases, links, plain
// containers, shared and internal networks, stopped containers), every
// kind of name asked by many containers through the real chain (compose
// scoping, Docker's names, the zone handler, a fake upstream), each answer
// checked against a small reference model of the rules and against rules
// that must hold whatever the topology. Names are drawn from small pools so
// that they collide on purpose: a project called db, a plain container
// called web, a container_name that is another project's service.

const modelZone = "berth.internal"

var (
	poolProjects  = []string{"shop", "blog", "db", "a1"}
	poolServices  = []string{"db", "web", "worker", "be", "cache"}
	poolPlain     = []string{"db", "proxy", "web", "cafe"}
	poolCName     = []string{"db", "named-db", "web", "blog-db"}
	poolAliases   = []string{"database", "lb", "db", "cafe"}
	forwardedAddr = netip.MustParseAddr("192.0.2.99")
)

type mNet struct {
	id       string
	internal bool
}

type mCtr struct {
	id, name, hostname string
	labels             map[string]string
	nets               []string            // first is primary (where its queries arrive)
	aliases            map[string][]string // per network
	ips                map[string]netip.Addr
	links              map[string]string
	running            bool
}

type topology struct {
	nets     []mNet
	ctrs     []*mCtr
	services services
}

func genTopology(r *rand.Rand) *topology {
	t := &topology{services: services{}}
	nShared := 1 + r.IntN(3)
	for i := 0; i < nShared; i++ {
		t.nets = append(t.nets, mNet{id: fmt.Sprintf("shared%d", i), internal: i > 0 && r.IntN(3) == 0})
	}
	ipNext := map[string]int{}
	attach := func(c *mCtr, netID string, aliases ...string) {
		if slices.Contains(c.nets, netID) {
			return
		}
		idx := slices.IndexFunc(t.nets, func(n mNet) bool { return n.id == netID })
		ipNext[netID]++
		c.nets = append(c.nets, netID)
		c.ips[netID] = netip.AddrFrom4([4]byte{10, byte(idx), byte(ipNext[netID] / 250), byte(2 + ipNext[netID]%250)})
		c.aliases[netID] = aliases
	}
	newCtr := func(name string, l map[string]string) *mCtr {
		c := &mCtr{id: fmt.Sprintf("%02x%062x", len(t.ctrs)+1, r.Uint64()), name: name, labels: l,
			aliases: map[string][]string{}, ips: map[string]netip.Addr{}, running: r.IntN(6) > 0}
		c.hostname = c.id[:12]
		t.ctrs = append(t.ctrs, c)
		return c
	}
	projects := slices.Clone(poolProjects)
	r.Shuffle(len(projects), func(i, j int) { projects[i], projects[j] = projects[j], projects[i] })
	for _, p := range projects[:2+r.IntN(len(projects)-1)] {
		own := p + "_default"
		t.nets = append(t.nets, mNet{id: own})
		svcs := slices.Clone(poolServices)
		r.Shuffle(len(svcs), func(i, j int) { svcs[i], svcs[j] = svcs[j], svcs[i] })
		for _, s := range svcs[:1+r.IntN(3)] {
			t.services[p+"/"+s] = true
			replicas := r.IntN(4) // 0: the service exists, nothing was created
			cname := ""
			if replicas == 1 && r.IntN(3) == 0 {
				cname = poolCName[r.IntN(len(poolCName))]
			}
			var shared []string
			for _, n := range t.nets[:nShared] {
				if r.IntN(2) == 0 {
					shared = append(shared, n.id)
				}
			}
			extra := ""
			if r.IntN(4) == 0 {
				extra = poolAliases[r.IntN(len(poolAliases))]
			}
			for n := 1; n <= replicas; n++ {
				name := cname
				if name == "" {
					name = DefaultContainerName(p, s, n)
				}
				if t.nameTaken(name) {
					continue
				}
				c := newCtr(name, labels(p, s, n))
				nets := append([]string{own}, shared...)
				if r.IntN(3) == 0 { // sometimes the shared network is primary
					slices.Reverse(nets)
				}
				for _, n := range nets {
					aliases := []string{s, name}
					if extra != "" {
						aliases = append(aliases, extra)
					}
					attach(c, n, aliases...)
				}
			}
			if r.IntN(4) == 0 { // a one-off of the service
				if c := newCtr(fmt.Sprintf("%s-%s-run-%x", p, s, r.Uint32()), labels(p, s, 0)); true {
					attach(c, own)
				}
			}
		}
	}
	for _, name := range poolPlain[:r.IntN(len(poolPlain)+1)] {
		if t.nameTaken(name) {
			continue
		}
		c := newCtr(name, nil)
		n := t.nets[r.IntN(len(t.nets))].id
		var aliases []string
		if r.IntN(3) == 0 {
			aliases = []string{poolAliases[r.IntN(len(poolAliases))]}
		}
		attach(c, n, aliases...)
	}
	// links: a few containers link an alias to another container
	for _, c := range t.ctrs {
		if r.IntN(6) == 0 {
			target := t.ctrs[r.IntN(len(t.ctrs))]
			c.links = map[string]string{[]string{"linked", "db", "cache"}[r.IntN(3)]: target.name}
		}
	}
	return t
}

func (t *topology) nameTaken(name string) bool {
	return slices.ContainsFunc(t.ctrs, func(c *mCtr) bool { return c.name == name })
}

func (t *topology) internal(netID string) bool {
	i := slices.IndexFunc(t.nets, func(n mNet) bool { return n.id == netID })
	return t.nets[i].internal
}

func (t *topology) table() *dns.Table {
	tbl := dns.NewTable()
	for _, c := range t.ctrs {
		if !c.running {
			continue
		}
		for _, n := range c.nets {
			tbl.Add(dns.Endpoint{ContainerID: c.id, Name: c.name, Hostname: c.hostname, Aliases: c.aliases[n],
				IP: c.ips[n], NetworkID: n, NetworkName: n, Internal: t.internal(n), Labels: c.labels, Links: c.links})
		}
	}
	return tbl
}

// outcome of one query through the chain
type outcome struct {
	rcode     int
	addrs     []netip.Addr
	forwarded bool
}

func (o outcome) String() string {
	if o.forwarded {
		return "forwarded"
	}
	return fmt.Sprintf("%s %v", mdns.RcodeToString[o.rcode], o.addrs)
}

type fwdRecorder struct{ calls int }

func (f *fwdRecorder) Name() string { return "upstream" }
func (f *fwdRecorder) ServeDNS(_ context.Context, w mdns.ResponseWriter, r *mdns.Msg) (int, error) {
	f.calls++
	return dns.WriteAnswer(w, r, dns.ARecords(r.Question[0].Name, []netip.Addr{forwardedAddr}))
}

type askFn func(c *mCtr, q string) outcome

func (t *topology) asker(tbl *dns.Table) askFn {
	fwd := &fwdRecorder{}
	h := dns.Chain(DNSPlugin(t.services), dns.Names(), dns.Zone(), func(dns.Handler) dns.Handler { return fwd })
	return func(c *mCtr, q string) outcome {
		ep, _ := tbl.ByIP(c.nets[0], c.ips[c.nets[0]])
		req := &dns.Request{Network: c.nets[0], Internal: t.internal(c.nets[0]), Zone: modelZone, Records: tbl, Asker: &ep, Source: ep.IP}
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(q), mdns.TypeA)
		w := &recorder{}
		before := fwd.calls
		dns.Dispatch(dns.WithRequest(context.Background(), req), h, w, m)
		o := outcome{rcode: w.msg.Rcode, forwarded: fwd.calls > before}
		for _, rr := range w.msg.Answer {
			if a, ok := rr.(*mdns.A); ok {
				ip, _ := netip.AddrFromSlice(a.A)
				o.addrs = append(o.addrs, ip.Unmap())
			}
		}
		return o
	}
}

// modelBare is the reference model of a bare name's answer (rules 1, 2 and
// Docker's names), written from the rules, not from the code: the
// addresses, or nil and whether it is NXDOMAIN (else it is forwarded).
func (t *topology) modelBare(a *mCtr, x string) (addrs []netip.Addr, nxdomain bool) {
	reach := func(c *mCtr) []netip.Addr { // per container: receiving network, else shared
		if ip, ok := c.ips[a.nets[0]]; ok {
			return []netip.Addr{ip}
		}
		var out []netip.Addr
		for _, n := range c.nets {
			if slices.Contains(a.nets, n) {
				out = append(out, c.ips[n])
			}
		}
		return out
	}
	running := func(yield func(*mCtr) bool) {
		for _, c := range t.ctrs {
			if c.running && !yield(c) {
				return
			}
		}
	}
	if target, ok := a.links[x]; ok {
		for c := range running {
			if c.name == target {
				addrs = append(addrs, reach(c)...)
			}
		}
		if len(addrs) > 0 {
			return addrs, false
		}
	}
	if p := a.labels[LabelProject]; p != "" {
		owns := func(c *mCtr) bool {
			k, ok := KeyOf(c.labels)
			if !ok || k.Project != p || k.OneOff {
				return false
			}
			return k.Service == x || c.name == x || slices.ContainsFunc(c.nets, func(n string) bool { return slices.Contains(c.aliases[n], x) })
		}
		has := t.services[p+"/"+x]
		for c := range running {
			if owns(c) {
				has = true
				addrs = append(addrs, reach(c)...)
			}
		}
		if has {
			return addrs, len(addrs) == 0
		}
	}
	// Docker's names: name, aliases, short id, hostname on the asker's
	// networks; the receiving network's alone when it has any
	var here, elsewhere []netip.Addr
	for c := range running {
		for _, n := range c.nets {
			if !slices.Contains(a.nets, n) {
				continue
			}
			if c.name == x || slices.Contains(c.aliases[n], x) || c.id[:12] == x || c.hostname == x {
				if n == a.nets[0] {
					here = append(here, c.ips[n])
				} else {
					elsewhere = append(elsewhere, c.ips[n])
				}
			}
		}
	}
	if len(here) > 0 {
		return here, false
	}
	return elsewhere, false
}

func sameSet(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// owners maps addresses back to the containers that have them.
func (t *topology) owners(addrs []netip.Addr) []string {
	var ids []string
	for _, ip := range addrs {
		for _, c := range t.ctrs {
			for _, a := range c.ips {
				if a == ip && !slices.Contains(ids, c.id) {
					ids = append(ids, c.id)
				}
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func (t *topology) describe() string {
	var b strings.Builder
	for _, n := range t.nets {
		fmt.Fprintf(&b, "net %s internal=%v\n", n.id, n.internal)
	}
	for _, c := range t.ctrs {
		fmt.Fprintf(&b, "ctr %s %s running=%v labels=%v nets=%v ips=%v aliases=%v links=%v\n", c.id[:6], c.name, c.running, c.labels, c.nets, c.ips, c.aliases, c.links)
	}
	return b.String()
}

func TestDNSModel(t *testing.T) {
	topologies := 200
	if testing.Short() {
		topologies = 30
	}
	for seed := uint64(1); seed <= uint64(topologies); seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		topo := genTopology(r)
		tbl := topo.table()
		ask := topo.asker(tbl)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: %s\n%s", seed, fmt.Sprintf(format, args...), topo.describe())
		}
		var askers []*mCtr
		for _, c := range topo.ctrs {
			if c.running {
				askers = append(askers, c)
			}
		}
		r.Shuffle(len(askers), func(i, j int) { askers[i], askers[j] = askers[j], askers[i] })
		askers = askers[:min(len(askers), 5)]
		names := slices.Concat(poolServices, poolPlain, poolCName, poolAliases, poolProjects, []string{"linked", "nosuch"})
		for _, c := range topo.ctrs {
			names = append(names, c.name, c.id[:12])
		}
		for _, a := range askers {
			project := a.labels[LabelProject]
			for _, x := range names {
				got := ask(a, x)
				// no address twice, in any answer
				sorted := slices.Clone(got.addrs)
				slices.SortFunc(sorted, netip.Addr.Compare)
				if len(slices.Compact(sorted)) != len(got.addrs) {
					fail("%s asks %q: duplicate addresses %v", a.name, x, got.addrs)
				}
				want, nx := topo.modelBare(a, x)
				switch {
				case len(want) > 0:
					if got.forwarded || !sameSet(got.addrs, want) {
						fail("%s asks %q: got %v, model says %v", a.name, x, got, want)
					}
				case nx:
					if got.rcode != mdns.RcodeNameError {
						fail("%s asks %q: got %v, model says NXDOMAIN", a.name, x, got)
					}
				default:
					if !got.forwarded {
						fail("%s asks %q: got %v, model says forwarded", a.name, x, got)
					}
				}
				// a bare name never answers an address the asker cannot reach
				for _, ip := range got.addrs {
					if ip != forwardedAddr && !slices.ContainsFunc(a.nets, func(n string) bool {
						return slices.ContainsFunc(topo.ctrs, func(c *mCtr) bool { return c.ips[n] == ip })
					}) {
						fail("%s asks %q: %s is on none of its networks", a.name, x, ip)
					}
				}
				// the search domains: when x resolves bare, neither form is
				// NXDOMAIN, and only one has addresses (but for rule 3's
				// own exception: a service that is also a container_name)
				for _, q := range []string{x + "." + modelZone, x + "." + strings.ToLower(project) + "." + modelZone} {
					if got := ask(a, q); got.forwarded {
						fail("%s asks %q: a zone name was forwarded", a.name, q)
					}
				}
				if project == "" || len(want) == 0 {
					continue
				}
				zoneForm, projForm := ask(a, x+"."+modelZone), ask(a, x+"."+project+"."+modelZone)
				_, isLink := a.links[x]
				linkOverService := isLink && topo.services[project+"/"+x] // x.P.zone is the service's, daemon-wide
				// x.P.zone of a service of P is rule 3's daemon-wide name: NXDOMAIN
				// while the service has nothing, whatever else x is bare
				serviceForm := topo.services[project+"/"+x]
				if zoneForm.rcode == mdns.RcodeNameError || (projForm.rcode == mdns.RcodeNameError && !serviceForm) {
					fail("%s: %q resolves bare, but %s.%s is %v and %s.%s.%s is %v", a.name, x, x, modelZone, zoneForm, x, project, modelZone, projForm)
				}
				serviceAndName := topo.serviceRunning(project, x) && slices.ContainsFunc(topo.ctrs, func(c *mCtr) bool {
					_, dep := KeyOf(c.labels)
					return c.running && dep && !isOneOff(c) && c.name == x
				})
				if len(zoneForm.addrs) > 0 && len(projForm.addrs) > 0 && !serviceAndName && !linkOverService {
					fail("%s: %q answers under both search domains: %v and %v", a.name, x, zoneForm, projForm)
				}
			}
		}
		// zone names of services and replicas are daemon-wide: the same
		// containers whoever asks
		for ps := range topo.services {
			p, s, _ := strings.Cut(ps, "/")
			var wantIDs []string
			for _, c := range topo.ctrs {
				if k, ok := KeyOf(c.labels); ok && c.running && !k.OneOff && k.Project == p && k.Service == s {
					wantIDs = append(wantIDs, c.id)
				}
			}
			slices.Sort(wantIDs)
			for _, a := range askers {
				got := ask(a, s+"."+p+"."+modelZone)
				if ids := topo.owners(got.addrs); !slices.Equal(ids, wantIDs) || (len(wantIDs) == 0) != (got.rcode == mdns.RcodeNameError) {
					fail("%s asks %s.%s: containers %v (%v), want %v", a.name, s, p, ids, got, wantIDs)
				}
			}
		}
	}
}

func (t *topology) serviceRunning(project, service string) bool {
	return slices.ContainsFunc(t.ctrs, func(c *mCtr) bool {
		k, ok := KeyOf(c.labels)
		return ok && c.running && !k.OneOff && k.Project == project && k.Service == service
	})
}

func isOneOff(c *mCtr) bool {
	k, _ := KeyOf(c.labels)
	return k.OneOff
}
