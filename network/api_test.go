package network

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthd/berth/events"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// newOffline is a manager that never touches the host: networks are put
// into its memory directly.
func newOffline(t *testing.T) *Manager {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	assert.NilError(t, err)
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(t.TempDir())
	cfg.DNSZone = "berth.internal"
	m, err := New(Deps{DB: db, Events: events.New(10), Config: cfg})
	assert.NilError(t, err)
	return m
}

func (m *Manager) put(t *testing.T, r netRecord) {
	r.Driver = "bridge"
	if !r.Subnet.IsValid() {
		r.Subnet = netip.MustParsePrefix("10.99.0.0/24")
		r.Gateway = netip.MustParseAddr("10.99.0.1")
	}
	assert.NilError(t, m.addState(&r))
}

func TestNetworksFilters(t *testing.T) {
	m := newOffline(t)
	old := time.Now().Add(-2 * time.Hour)
	m.put(t, netRecord{ID: "aaaa1111" + "0000", Name: "front", Labels: map[string]string{"app": "shop", "tier": "web"}, Created: old})
	m.put(t, netRecord{ID: "aaaa2222" + "0000", Name: "back", Labels: map[string]string{"app": "shop"}, Created: time.Now()})
	m.put(t, netRecord{ID: "bbbb3333" + "0000", Name: "used", Created: old})
	m.endpoints[epKey("bbbb33330000", "c1")] = &endpointRecord{NetworkID: "bbbb33330000", ContainerID: "c1"}

	ctx := context.Background()
	names := func(kv ...[2]string) []string {
		list, err := m.Networks(ctx, filters.New(kv...))
		assert.NilError(t, err)
		var out []string
		for _, n := range list {
			out = append(out, n.Name)
		}
		return out
	}
	cases := []struct {
		name string
		f    [][2]string
		want []string
	}{
		{"all", nil, []string{"back", "bridge", "front", "host", "none", "used"}},
		{"label key", [][2]string{{"label", "tier"}}, []string{"front"}},
		{"label kv", [][2]string{{"label", "app=shop"}}, []string{"back", "front"}},
		{"labels ANDed", [][2]string{{"label", "app=shop"}, {"label", "tier=web"}}, []string{"front"}},
		{"name regexp", [][2]string{{"name", "^b"}}, []string{"back", "bridge"}},
		{"id prefix", [][2]string{{"id", "aaaa"}}, []string{"back", "front"}},
		{"driver", [][2]string{{"driver", "host"}}, []string{"host"}},
		{"custom", [][2]string{{"type", "custom"}}, []string{"back", "front", "used"}},
		{"builtin", [][2]string{{"type", "builtin"}}, []string{"bridge", "host", "none"}},
		{"dangling", [][2]string{{"dangling", "true"}}, []string{"back", "front"}},
		{"not dangling", [][2]string{{"dangling", "false"}}, []string{"bridge", "host", "none", "used"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.DeepEqual(names(tc.f...), tc.want))
		})
	}
	for _, bad := range [][2]string{{"color", "red"}, {"type", "odd"}, {"dangling", "maybe"}} {
		_, err := m.Networks(ctx, filters.New(bad))
		assert.Check(t, errdefs.IsInvalidArgument(err), "%v", bad)
	}
}

func TestLookup(t *testing.T) {
	m := newOffline(t)
	m.put(t, netRecord{ID: "abc1230000", Name: "one"})
	m.put(t, netRecord{ID: "abc4560000", Name: "two"})
	m.put(t, netRecord{ID: "two", Name: "three"}) // an id equal to another's name: the id wins
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tc := range []struct {
		in, want string
		check    func(error) bool
	}{
		{"one", "one", nil},
		{"abc456", "two", nil},
		{"two", "three", nil},
		{"abc", "", errdefs.IsInvalidArgument},
		{"nope", "", errdefs.IsNotFound},
		{"", "", errdefs.IsNotFound},
	} {
		st, err := m.lookupLocked(tc.in)
		if tc.check != nil {
			assert.Check(t, tc.check(err), "%s: %v", tc.in, err)
			continue
		}
		assert.NilError(t, err)
		assert.Check(t, is.Equal(st.rec.Name, tc.want), tc.in)
	}
}

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"1767322800", time.Unix(1767322800, 0)},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := parseUntil(tc.in, now)
		assert.NilError(t, err, tc.in)
		assert.Check(t, got.Equal(tc.want), "%s: %v", tc.in, got)
	}
	_, err := parseUntil("yesterday", now)
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func TestNotLabels(t *testing.T) {
	l := map[string]string{"a": "1"}
	assert.Check(t, !notLabels([]string{"a"}, l))
	assert.Check(t, !notLabels([]string{"a=1"}, l))
	assert.Check(t, notLabels([]string{"a=2"}, l))
	assert.Check(t, notLabels([]string{"b"}, l))
}

func TestNewChecksDeps(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	assert.NilError(t, err)
	defer db.Close()
	good := DefaultConfig("/run/x")
	good.DNSZone = "berth.internal"
	for name, d := range map[string]Deps{
		"no db":      {Events: events.New(1), Config: good},
		"no events":  {DB: db, Config: good},
		"long name":  {DB: db, Events: events.New(1), Config: func() Config { c := good; c.Bridge = "a-very-long-bridge"; return c }()},
		"no pools":   {DB: db, Events: events.New(1), Config: func() Config { c := good; c.Pools = nil; return c }()},
		"v6 bip":     {DB: db, Events: events.New(1), Config: func() Config { c := good; c.BIP = netip.MustParsePrefix("fd00::1/64"); return c }()},
		"no zone":    {DB: db, Events: events.New(1), Config: func() Config { c := good; c.DNSZone = ""; return c }()},
		"bad dns":    {DB: db, Events: events.New(1), Config: func() Config { c := good; c.DNSServers = []string{"nope"}; return c }()},
		"no execdir": {DB: db, Events: events.New(1), Config: func() Config { c := good; c.ExecRoot = ""; return c }()},
	} {
		_, err := New(d)
		assert.Check(t, err != nil, name)
	}
}
