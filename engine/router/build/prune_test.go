package build

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/berthd/berth/engine"
	"github.com/containerd/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fakeCache struct {
	got wire.PruneOptions
	err error
}

func (f *fakeCache) Prune(ctx context.Context, o wire.PruneOptions) (*buildtypes.CachePruneReport, error) {
	f.got = o
	if f.err != nil {
		return nil, f.err
	}
	return &buildtypes.CachePruneReport{CachesDeleted: []string{"r1"}, SpaceReclaimed: 42}, nil
}

func TestPruneOptions(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		want         wire.PruneOptions
		err          string
	}{
		{name: "none", target: "/build/prune"},
		{name: "all and space", target: "/v1.48/build/prune?all=1&reserved-space=10&max-used-space=20&min-free-space=30",
			want: wire.PruneOptions{All: true, ReservedSpace: 10, MaxUsedSpace: 20, MinFreeSpace: 30}},
		{name: "keep-storage is the fallback of reserved-space", target: "/v1.48/build/prune?keep-storage=5",
			want: wire.PruneOptions{ReservedSpace: 5}},
		{name: "before 1.48 only keep-storage", target: "/v1.47/build/prune?keep-storage=5&max-used-space=9",
			want: wire.PruneOptions{ReservedSpace: 5}},
		{name: "until", target: `/build/prune?filters={"until":{"24h":true}}`,
			want: wire.PruneOptions{KeepDuration: 24 * time.Hour}},
		{name: "unused-for", target: `/build/prune?filters={"unused-for":{"1h":true}}`,
			want: wire.PruneOptions{KeepDuration: time.Hour}},
		{name: "fields", target: `/build/prune?filters={"type":{"regular":true},"id":{"abc":true}}`,
			want: wire.PruneOptions{Fields: map[string]string{"type": "regular", "id": "abc"}}},
		{name: "bad bytes", target: "/build/prune?reserved-space=lots", err: "reserved-space is in bytes and expects an integer, got lots"},
		{name: "bad filter", target: `/build/prune?filters={"color":{"red":true}}`, err: "invalid filter 'color'"},
		{name: "conflict", target: `/build/prune?filters={"until":{"1h":true},"unused-for":{"1h":true}}`, err: `conflicting filters: "until" and "unused-for"`},
		{name: "two values", target: `/build/prune?filters={"type":{"a":true,"b":true}}`, err: "filters expect only one value"},
		{name: "bad until", target: `/build/prune?filters={"until":{"soon":true}}`, err: `"until" filter expects a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeCache{}
			srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(&fake{}, c))
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", tc.target, nil))
			if tc.err != "" {
				assert.Check(t, is.Equal(rec.Code, 400))
				assert.Check(t, is.Contains(rec.Body.String(), strings.ReplaceAll(tc.err, `"`, `\"`)))
				return
			}
			assert.Check(t, is.Equal(rec.Code, 200))
			assert.Check(t, is.Equal(rec.Body.String(), `{"CachesDeleted":["r1"],"SpaceReclaimed":42}`+"\n"))
			// durations are measured from the request's time: compare to the second
			c.got.KeepDuration = c.got.KeepDuration.Round(time.Second)
			assert.Check(t, is.DeepEqual(c.got, tc.want))
		})
	}
}

func TestPruneError(t *testing.T) {
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(&fake{}, &fakeCache{err: errdefs.ErrUnavailable.WithMessage("busy")}))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/build/prune", strings.NewReader("")))
	assert.Check(t, rec.Code >= 500)
}
