package dns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The indexes answer what a walk over every endpoint answers, through any
// sequence of adds, replacements and removals.
func TestTableIndexesMatchAWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 1000))
	tbl := NewTable()
	nets := []string{"n1", "n2", "n3"}
	names := []string{"db", "web", "DB", "cache", "api"}
	for step := range 3000 {
		nw, ctr := nets[r.IntN(len(nets))], fmt.Sprintf("c%02d", r.IntN(40))
		if r.IntN(4) == 0 {
			tbl.Remove(nw, ctr)
		} else {
			ep := Endpoint{NetworkID: nw, ContainerID: ctr + strings.Repeat("0", 12), Name: ctr, Hostname: names[r.IntN(len(names))],
				IP: netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(3)), byte(2 + r.IntN(60))})}
			ep.ContainerID = ctr // Names() adds the short id only for ids of 12 or more
			if r.IntN(2) == 0 {
				ep.Aliases = []string{names[r.IntN(len(names))]}
			}
			if r.IntN(3) == 0 {
				ep.IPv6 = netip.MustParseAddr(fmt.Sprintf("fd00::%x", 2+r.IntN(60)))
			}
			tbl.Add(ep)
		}
		all := tbl.Endpoints()
		for _, q := range append(names, "c07", "C07", "nobody") {
			var want []Endpoint
			for _, ep := range all {
				for _, n := range ep.Names() {
					if strings.EqualFold(n, q) {
						want = append(want, ep)
						break
					}
				}
			}
			got := tbl.Named(q)
			assert.Assert(t, is.DeepEqual(keys(got), keys(want)), "step %d, name %s", step, q)
			for i := 1; i < len(got); i++ {
				// in Endpoints' order (which two holders of one address do not have)
				assert.Assert(t, got[i-1].IP.Compare(got[i].IP) <= 0, "step %d, name %s: %v", step, q, got)
			}
		}
		for _, nw := range nets {
			for _, a := range []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(3)), byte(2 + r.IntN(60))}), netip.MustParseAddr(fmt.Sprintf("fd00::%x", 2+r.IntN(60)))} {
				holders := 0
				for _, ep := range all {
					if ep.NetworkID == nw && ep.Has(a) {
						holders++
					}
				}
				got, ok := tbl.ByIP(nw, a)
				assert.Assert(t, is.Equal(ok, holders > 0), "step %d, %s on %s", step, a, nw)
				if ok {
					assert.Assert(t, got.Has(a) && got.NetworkID == nw, "step %d", step)
				}
			}
		}
	}
}

func keys(eps []Endpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, ep.NetworkID+"/"+ep.ContainerID)
	}
	slices.Sort(out)
	return out
}

// tableOf returns a table of n containers on one network, each with a name,
// an alias shared by 3 and an address.
func tableOf(n int) *Table {
	tbl := NewTable()
	for i := range n {
		tbl.Add(Endpoint{NetworkID: "net1", NetworkName: "scale", ContainerID: fmt.Sprintf("%064x", i+1),
			Name: fmt.Sprintf("s%d", i+1), Aliases: []string{fmt.Sprintf("svc%d", i/3)},
			IP: netip.AddrFrom4([4]byte{10, 222, byte((i + 2) >> 8), byte(i + 2)})})
	}
	return tbl
}

// A query does the same work whether the daemon has 10 containers or
// 1000: who asked (ByIP) and who has the name (Named) come from indexes.
// The work is counted as allocations, which a walk over every endpoint
// would multiply (each endpoint's Names is a new slice).
func TestQueryWorkDoesNotGrowWithEndpoints(t *testing.T) {
	h := Chain(Names(), Zone())
	allocs := func(n int) float64 {
		tbl := tableOf(n)
		asker, ok := tbl.ByIP("net1", netip.MustParseAddr("10.222.0.2"))
		assert.Assert(t, ok)
		q := new(dns.Msg)
		q.SetQuestion("s2.", dns.TypeA)
		req := &Request{Network: "net1", Zone: "berth.internal", Records: tbl}
		tbl.Endpoints() // the snapshot is built once per change, not per query
		return testing.AllocsPerRun(50, func() {
			w := &recorder{}
			ep, _ := tbl.ByIP("net1", asker.IP)
			req.Asker = &ep
			Dispatch(WithRequest(context.Background(), req), h, w, q)
			if w.msg == nil || len(w.msg.Answer) != 1 {
				t.Fatalf("no answer for s2 with %d endpoints: %v", n, w.msg)
			}
		})
	}
	a10, a1000 := allocs(10), allocs(1000)
	assert.Check(t, a1000 <= a10, "a query allocates %v times with 10 endpoints and %v with 1000", a10, a1000)

	ptr := func(n int) float64 {
		tbl := tableOf(n)
		asker, _ := tbl.ByIP("net1", netip.MustParseAddr("10.222.0.2"))
		q := new(dns.Msg)
		q.SetQuestion("3.0.222.10.in-addr.arpa.", dns.TypePTR)
		req := &Request{Network: "net1", Zone: "berth.internal", Records: tbl, Asker: &asker}
		return testing.AllocsPerRun(50, func() {
			w := &recorder{}
			Dispatch(WithRequest(context.Background(), req), h, w, q)
			if w.msg == nil || len(w.msg.Answer) != 1 {
				t.Fatalf("no PTR answer with %d endpoints: %v", n, w.msg)
			}
		})
	}
	p10, p1000 := ptr(10), ptr(1000)
	assert.Check(t, p1000 <= p10, "a PTR query allocates %v times with 10 endpoints and %v with 1000", p10, p1000)
}

// go test -run XXX -bench TableQuery ./network/dns/
func BenchmarkTableQuery(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tbl := tableOf(n)
			h := Chain(Names(), Zone())
			q := new(dns.Msg)
			q.SetQuestion("s2.", dns.TypeA)
			asker, _ := tbl.ByIP("net1", netip.MustParseAddr("10.222.0.2"))
			req := &Request{Network: "net1", Zone: "berth.internal", Records: tbl, Asker: &asker}
			b.ReportAllocs()
			for b.Loop() {
				Dispatch(WithRequest(context.Background(), req), h, &recorder{}, q)
			}
			b.ReportMetric(float64(n), "endpoints")
		})
	}
}
