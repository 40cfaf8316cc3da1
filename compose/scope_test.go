package compose

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthd/berth/network/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type services map[string]bool // "project/service"

func (s services) HasService(project, service string) bool { return s[project+"/"+service] }

func rec(id, name, network, ip string, l map[string]string, aliases ...string) dns.Endpoint {
	ep := dns.Endpoint{ContainerID: id, Name: name, NetworkID: network, Labels: l, Aliases: aliases}
	if a := netip.MustParseAddr(ip); a.Is4() {
		ep.IP = a
	} else {
		ep.IPv6 = a
	}
	return ep
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestScopeLookup(t *testing.T) {
	shopDB, blogDB := labels("shop", "db", 1), labels("blog", "db", 1)
	records := []dns.Endpoint{
		// shop: db (container_name named-db) and web on shopnet and shared, two workers on shopnet
		rec("sdb", "named-db", "shopnet", "10.1.0.2", shopDB, "named-db", "db", "database"),
		rec("sdb", "named-db", "shared", "10.9.0.2", shopDB, "named-db", "db", "database"),
		rec("sweb", "shop-web-1", "shopnet", "10.1.0.3", labels("shop", "web", 1), "shop-web-1", "web"),
		rec("sweb", "shop-web-1", "shared", "10.9.0.3", labels("shop", "web", 1), "shop-web-1", "web"),
		rec("sw2", "shop-worker-2", "shopnet", "10.1.0.5", labels("shop", "worker", 2), "shop-worker-2", "worker"),
		rec("sw1", "shop-worker-1", "shopnet", "10.1.0.4", labels("shop", "worker", 1), "shop-worker-1", "worker"),
		rec("srun", "shop-worker-run-1", "shopnet", "10.1.0.9", labels("shop", "worker", 0), "shop-worker-run-1"),
		// blog: db and web on blognet and shared, a cache only on blognet
		rec("bdb", "blog-db-1", "blognet", "10.2.0.2", blogDB, "blog-db-1", "db"),
		rec("bdb", "blog-db-1", "shared", "10.9.0.4", blogDB, "blog-db-1", "db"),
		rec("bweb", "blog-web-1", "blognet", "10.2.0.3", labels("blog", "web", 1), "blog-web-1", "web"),
		rec("bweb", "blog-web-1", "shared", "10.9.0.5", labels("blog", "web", 1), "blog-web-1", "web"),
		rec("bcache", "blog-cache-1", "shared", "10.9.0.6", labels("blog", "cache", 1), "blog-cache-1", "cache"),
		// a plain docker container on shared
		rec("plain", "proxy", "shared", "10.9.0.7", nil, "proxy", "lb"),
	}
	shopWeb := Asker{ContainerID: "sweb", Labels: labels("shop", "web", 1), Networks: []string{"shopnet", "shared"}}
	blogWeb := Asker{ContainerID: "bweb", Labels: labels("blog", "web", 1), Networks: []string{"blognet", "shared"}}
	shopWebHere := shopWeb
	shopWebHere.Network = "shopnet" // the query came in on shop's own network
	shopRun := Asker{ContainerID: "srun", Labels: labels("shop", "worker", 0), Networks: []string{"shopnet"}}
	plain := Asker{ContainerID: "plain", Networks: []string{"shared"}}
	outsider := Asker{ContainerID: "x", Labels: labels("other", "web", 1), Networks: []string{"othernet"}}
	linked := Asker{ContainerID: "l", Labels: labels("shop", "web", 2), Networks: []string{"shopnet", "shared"}, Links: map[string]string{"blogdb": "blog-db-1", "gone": "nothing"}}
	linkedAway := Asker{ContainerID: "l2", Labels: labels("shop", "web", 3), Networks: []string{"shopnet"}, Links: map[string]string{"blogdb": "blog-db-1"}}
	// a member of shop on the shared network alone: shop's workers are out of its reach
	shopEdge := Asker{ContainerID: "sedge", Labels: labels("shop", "edge", 1), Networks: []string{"shared"}}
	// what Docker's rules let shopWeb see (the next handlers)
	shopWebSees := shopWeb
	shopWebSees.Sees = func(n string) bool { return n == "proxy" || n == "lb" }

	known := services{"shop/db": true, "shop/web": true, "shop/worker": true, "blog/db": true, "blog/web": true, "blog/cache": true, "shop/mail": true}

	tests := []struct {
		name    string
		q       string
		asker   Asker
		want    []netip.Addr
		handled bool
		nodata  bool
	}{
		{name: "bare service: own deployment only", q: "db", asker: shopWeb, want: addrs("10.1.0.2", "10.9.0.2"), handled: true},
		{name: "the receiving network's address first", q: "db", asker: shopWebHere, want: addrs("10.1.0.2"), handled: true},
		{name: "else the other shared networks'", q: "db.blog.berth.internal", asker: shopWebHere, want: addrs("10.9.0.4"), handled: true},
		{name: "bare service from the other deployment", q: "db", asker: blogWeb, want: addrs("10.2.0.2", "10.9.0.4"), handled: true},
		{name: "case and trailing dot", q: "DB.", asker: blogWeb, want: addrs("10.2.0.2", "10.9.0.4"), handled: true},
		{name: "compose alias of own deployment", q: "database", asker: shopWeb, want: addrs("10.1.0.2", "10.9.0.2"), handled: true},
		{name: "all replicas, by number", q: "worker", asker: shopWeb, want: addrs("10.1.0.4", "10.1.0.5"), handled: true},
		{name: "one-off asks as a member of its project", q: "db", asker: shopRun, want: addrs("10.1.0.2"), handled: true},
		{name: "own service that is stopped: NXDOMAIN, not the other's", q: "mail", asker: shopWeb, handled: true},
		{name: "service the deployment does not have: next handler", q: "cache", asker: shopWeb},
		{name: "not a compose container: next handler", q: "db", asker: plain},
		{name: "plain name: next handler", q: "proxy", asker: shopWeb},
		{name: "empty", q: ".", asker: shopWeb},

		{name: "fqdn service", q: "db.blog.berth.internal", asker: shopWeb, want: addrs("10.9.0.4"), handled: true},
		{name: "fqdn service, no shared network: all addresses", q: "db.blog.berth.internal", asker: outsider, want: addrs("10.2.0.2", "10.9.0.4"), handled: true},
		{name: "fqdn replica", q: "2.worker.shop.berth.internal", asker: blogWeb, want: addrs("10.1.0.5"), handled: true},
		{name: "fqdn all replicas", q: "worker.shop.berth.internal.", asker: shopWeb, want: addrs("10.1.0.4", "10.1.0.5"), handled: true},
		{name: "fqdn missing replica", q: "3.worker.shop.berth.internal", asker: shopWeb},
		{name: "fqdn container_name", q: "named-db.berth.internal", asker: blogWeb, want: addrs("10.9.0.2"), handled: true},
		{name: "fqdn plain container name: no zone name outside deployments", q: "proxy.berth.internal", asker: outsider},
		{name: "fqdn one-off is not a replica", q: "worker.shop.berth.internal", asker: outsider, want: addrs("10.1.0.4", "10.1.0.5"), handled: true},
		{name: "fqdn unknown: the chain's zone handler answers", q: "nope.shop.berth.internal", asker: shopWeb},
		{name: "own service in the zone form: exists, answered under <P>.<zone>", q: "db.berth.internal", asker: blogWeb, handled: true, nodata: true},
		{name: "own stopped service in the zone form", q: "mail.berth.internal", asker: shopWeb, handled: true, nodata: true},
		{name: "own replicas in the zone form", q: "worker.berth.internal", asker: shopWeb, handled: true, nodata: true},
		{name: "own container_name in the project form: answered as <name>.<zone>", q: "named-db.shop.berth.internal", asker: shopWeb, handled: true, nodata: true},
		{name: "own alias in the project form: answered there", q: "database.shop.berth.internal", asker: shopWeb, want: addrs("10.1.0.2", "10.9.0.2"), handled: true},
		{name: "own alias in the zone form: exists", q: "database.berth.internal", asker: shopWeb, handled: true, nodata: true},
		{name: "a name Docker's rules answer, in the project form", q: "proxy.shop.berth.internal", asker: shopWebSees, handled: true, nodata: true},
		{name: "a name Docker's rules answer, in the zone form: next handler", q: "proxy.berth.internal", asker: shopWebSees},
		{name: "project form of another project's member: not a search domain", q: "proxy.blog.berth.internal", asker: shopWebSees},
		{name: "project form of an unknown name", q: "nothing.shop.berth.internal", asker: shopWebSees},
		{name: "link alias in the project form", q: "blogdb.shop.berth.internal", asker: linked, handled: true, nodata: true},
		{name: "own service out of reach: NXDOMAIN, never another's", q: "worker", asker: shopEdge, handled: true},
		{name: "own service partly in reach: only reachable addresses", q: "db", asker: shopEdge, want: addrs("10.9.0.2"), handled: true},
		{name: "zone name out of reach: every address", q: "worker.shop.berth.internal", asker: shopEdge, want: addrs("10.1.0.4", "10.1.0.5"), handled: true},
		{name: "a plain alias in the zone: next handler", q: "lb.berth.internal", asker: shopWeb},
		{name: "the zone apex", q: "berth.internal", asker: shopWeb},
		{name: "search domain form of a bare name", q: "db.shop.berth.internal", asker: shopWeb, want: addrs("10.1.0.2", "10.9.0.2"), handled: true},
		{name: "other zones are not ours", q: "db.example.com", asker: shopWeb},

		{name: "link alias", q: "blogdb", asker: linked, want: addrs("10.9.0.4"), handled: true},
		{name: "link alias out of reach falls through", q: "blogdb", asker: linkedAway},
		{name: "link to a missing container falls through", q: "gone", asker: linked},
	}
	s := Scope{Services: known}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ans, handled := s.Lookup(tc.q, tc.asker, records)
			assert.Check(t, is.Equal(handled, tc.handled))
			assert.Check(t, is.Equal(ans.NoData, tc.nodata))
			assert.Check(t, is.DeepEqual(strs(ans.Addrs), strs(tc.want)))
		})
	}
}

func TestScopeWithoutServiceSetUsesRecords(t *testing.T) {
	records := []dns.Endpoint{rec("bdb", "blog-db-1", "shared", "10.9.0.4", labels("blog", "db", 1), "db")}
	shopWeb := Asker{Labels: labels("shop", "web", 1), Networks: []string{"shared"}}
	_, handled := Scope{}.Lookup("db", shopWeb, records)
	assert.Check(t, !handled, "shop has no db record and no service set: the next handler answers")
	ans, handled := Scope{Zone: "example.test."}.Lookup("db.blog.example.test", shopWeb, records)
	assert.Check(t, handled)
	assert.Check(t, is.DeepEqual(strs(ans.Addrs), []string{"10.9.0.4"}))
}

func strs(a []netip.Addr) []string {
	var out []string
	for _, x := range a {
		out = append(out, x.String())
	}
	return out
}

func FuzzScopeLookup(f *testing.F) {
	for _, q := range []string{"db", "1.db.shop.berth.internal", "x.berth.internal", "..", "a.b.c.d.berth.internal"} {
		f.Add(q)
	}
	records := []dns.Endpoint{rec("sdb", "named-db", "n", "10.1.0.2", labels("shop", "db", 1), "db")}
	asker := Asker{Labels: labels("shop", "web", 1), Networks: []string{"n"}}
	f.Fuzz(func(t *testing.T, q string) {
		ans, handled := Scope{}.Lookup(q, asker, records)
		if !handled && len(ans.Addrs) > 0 {
			t.Fatal("addresses without handling")
		}
		if handled && strings.Trim(q, ".") == "" {
			t.Fatal("handled an empty name")
		}
	})
}

func TestSearchDomains(t *testing.T) {
	assert.Check(t, is.DeepEqual(SearchDomains{}.SearchDomains(nil), []string{"berth.internal"}))
	assert.Check(t, is.DeepEqual(SearchDomains{Zone: "Corp.Test."}.SearchDomains(labels("Shop", "web", 1)), []string{"shop.corp.test", "corp.test"}))
}
