package compose

import (
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func cand(id, name string, l map[string]string, running bool) Candidate {
	return Candidate{ID: id, Name: name, Labels: l, Running: running}
}

func TestResolve(t *testing.T) {
	shopDB := cand("shopdb", "named-db", labels("shop", "db", 1), true)
	shopWeb := cand("shopweb", "shop-web-1", labels("shop", "web", 1), true)
	shopWorker1 := cand("w1", "shop-worker-1", labels("shop", "worker", 1), true)
	shopWorker2 := cand("w2", "shop-worker-2", labels("shop", "worker", 2), true)
	blogDB := cand("blogdb", "blog-db-1", labels("blog", "db", 1), true)
	blogDBStopped := cand("blogdb", "blog-db-1", labels("blog", "db", 1), false)
	runDB := cand("run", "shop-db-run-1234", labels("shop", "db", 0), true)
	hyphen := cand("hy", "my-app-api-svc-1", labels("my-app", "api-svc", 1), true)
	plain := cand("plain", "db", nil, true)
	oldRecreate := cand("old", "abc123_shop-web-1", labels("shop", "web", 1), false)

	tests := []struct {
		name      string
		query     string
		cands     []Candidate
		want      string
		errClass  func(error) bool
		errSubstr string
	}{
		{name: "dash form finds a container_name replica", query: "shop-db-1", cands: []Candidate{shopDB, blogDB}, want: "shopdb"},
		{name: "underscore form", query: "shop_db_1", cands: []Candidate{shopDB, blogDB}, want: "shopdb"},
		{name: "leading slash", query: "/shop_db_1", cands: []Candidate{shopDB}, want: "shopdb"},
		{name: "replica number", query: "shop-worker-2", cands: []Candidate{shopWorker1, shopWorker2}, want: "w2"},
		{name: "hyphens in project and service", query: "my-app-api-svc-1", cands: []Candidate{hyphen}, want: "hy"},
		{name: "underscore form with hyphens", query: "my-app_api-svc_1", cands: []Candidate{hyphen}, want: "hy"},
		{name: "bare service, one deployment", query: "db", cands: []Candidate{shopDB, shopWeb}, want: "shopdb"},
		{name: "bare service picks replica 1", query: "worker", cands: []Candidate{shopWorker2, shopWorker1}, want: "w1"},
		{name: "bare service, only one deployment runs it", query: "db", cands: []Candidate{shopDB, blogDBStopped}, want: "shopdb"},
		{name: "bare service, none running, one deployment", query: "db", cands: []Candidate{blogDBStopped}, want: "blogdb"},
		{
			name: "bare service in two running deployments is ambiguous", query: "db", cands: []Candidate{shopDB, blogDB, shopWeb},
			errClass: errdefs.IsInvalidArgument, errSubstr: `ambiguous name "db": matches blog-db-1 (project blog), named-db (project shop)`,
		},
		{name: "one-off containers are not replicas", query: "db", cands: []Candidate{runDB}, errClass: errdefs.IsNotFound, errSubstr: "No such container: db"},
		{name: "one-off never makes a bare name ambiguous", query: "db", cands: []Candidate{runDB, shopDB}, want: "shopdb"},
		{name: "containers without labels are ignored", query: "db", cands: []Candidate{plain}, errClass: errdefs.IsNotFound, errSubstr: "No such container: db"},
		{name: "unknown", query: "nope", cands: []Candidate{shopDB, blogDB}, errClass: errdefs.IsNotFound, errSubstr: "No such container: nope"},
		{name: "wrong number", query: "shop-db-2", cands: []Candidate{shopDB}, errClass: errdefs.IsNotFound},
		{name: "recreate in progress: the running one", query: "shop-web-1", cands: []Candidate{oldRecreate, shopWeb}, want: "shopweb"},
		{
			name: "two stopped with one number", query: "shop-web-1", cands: []Candidate{oldRecreate, cand("new", "x", labels("shop", "web", 1), false)},
			errClass: errdefs.IsInvalidArgument, errSubstr: "ambiguous name",
		},
		{name: "no candidates", query: "db", errClass: errdefs.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := NameResolver{}.Resolve(tc.query, tc.cands)
			if tc.errClass != nil {
				assert.Assert(t, tc.errClass(err), "got %v", err)
				assert.Check(t, is.ErrorContains(err, tc.errSubstr))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(id, tc.want))
		})
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("shop-db-1")
	f.Add("db")
	f.Add("a_b_c_1")
	cands := []Candidate{
		cand("1", "named-db", labels("shop", "db", 1), true),
		cand("2", "blog-db-1", labels("blog", "db", 1), true),
		cand("3", "a-b-c-1", labels("a", "b_c", 1), true),
		cand("4", "a-b-c-1x", labels("a_b", "c", 1), false),
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, err := Resolve(name, cands)
		if err == nil && id == "" {
			t.Fatal("no id and no error")
		}
		if err != nil && !errdefs.IsNotFound(err) && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
