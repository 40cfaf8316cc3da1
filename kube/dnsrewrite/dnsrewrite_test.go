package dnsrewrite

import (
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      Options
		q      string
		want   string // "" means no rule (not in the zone)
		answer string // the owner name the answer rule gives back; "" means none
	}{
		{name: "service", q: "db.shop.berth.internal.", want: "db.shop.svc.cluster.local.", answer: "db.shop.berth.internal."},
		{name: "replica", q: "2.worker.shop.berth.internal.", want: "worker-2.worker.shop.svc.cluster.local.", answer: "2.worker.shop.berth.internal."},
		{name: "replica 10+", q: "12.worker.shop.berth.internal", want: "worker-12.worker.shop.svc.cluster.local.", answer: "12.worker.shop.berth.internal."},
		{name: "any case", q: "DB.Shop.Berth.Internal.", want: "db.shop.svc.cluster.local.", answer: "db.shop.berth.internal."},
		{name: "dashes in project and service", q: "3.my-worker.my-shop.berth.internal.", want: "my-worker-3.my-worker.my-shop.svc.cluster.local.", answer: "3.my-worker.my-shop.berth.internal."},
		{name: "numeric service name is a service", q: "web.shop2.berth.internal.", want: "web.shop2.svc.cluster.local.", answer: "web.shop2.berth.internal."},
		{name: "prefix and domain", o: Options{Zone: "corp.example.", NamespacePrefix: "berth-", ClusterDomain: "k8s.internal"},
			q: "2.worker.shop.corp.example.", want: "worker-2.worker.berth-shop.svc.k8s.internal.", answer: "2.worker.shop.corp.example."},
		{name: "prefix: service", o: Options{NamespacePrefix: "b-"},
			q: "db.my-shop.berth.internal.", want: "db.b-my-shop.svc.cluster.local.", answer: "db.my-shop.berth.internal."},
		{name: "replica 0 is not a replica", q: "0.worker.shop.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "leading zero is not a replica", q: "02.worker.shop.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "too many labels", q: "a.2.worker.shop.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "container_name form", q: "my-db.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "the zone itself", q: "berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "plain run namespace", q: "web.berth-default.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "plain run namespace, replica form", q: "1.web.berth-default.berth.internal.", want: "unmapped.berth.cluster.local."},
		{name: "not in the zone", q: "db.shop.svc.cluster.local."},
		{name: "zone as a suffix of a label", q: "db.shopberth.internal."},
		{name: "other zone", q: "db.shop.example.com."},
		{name: "zone regex is quoted", q: "db.shop.berthxinternal."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Rules(tc.o)
			assert.NilError(t, err)
			got, by, ok := Rewrite(rules, tc.q)
			assert.Equal(t, got, tc.want)
			assert.Equal(t, ok, tc.want != "")
			if !ok {
				return
			}
			// the answer rule of the rule that matched turns the rewritten
			// owner name back into the name that was asked
			answer, _ := by.Answer(got)
			assert.Equal(t, answer, tc.answer)
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Zone: "berth_internal"},
		{Zone: "a..b"},
		{ClusterDomain: "cluster.local{1}"},
		{NamespacePrefix: "Berth-"},
		{NamespacePrefix: "b.c"},
		{NamespacePrefix: "-b"},
	} {
		_, err := Rules(o)
		assert.Check(t, err != nil, "%+v", o)
		_, err = ConfigMap(o)
		assert.Check(t, err != nil, "%+v", o)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		gen  func() (string, error)
	}{
		{"configmap.golden.yaml", func() (string, error) { return ConfigMap(Options{}) }},
		{"configmap-prefix.golden.yaml", func() (string, error) {
			return ConfigMap(Options{Zone: "corp.example", NamespacePrefix: "berth-", ClusterDomain: "k8s.internal"})
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.gen()
			assert.NilError(t, err)
			again, _ := tc.gen()
			assert.Equal(t, got, again)
			golden.Assert(t, got, tc.file) // go test -update writes it
		})
	}
}
