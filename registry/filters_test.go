package registry

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/berthd/berth/internal/filters"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"go.podman.io/storage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func testEntry(t *testing.T, created time.Time, labels map[string]string, names ...string) entry {
	t.Helper()
	in := &imageInfo{}
	in.spec.Config = dockerspec.DockerOCIImageConfig{}
	in.spec.Config.Labels = labels
	e := entry{img: &storage.Image{ID: "x", Names: names}, info: in, created: created}
	for _, n := range names {
		named, ok := storedName(n)
		assert.Assert(t, ok, n)
		e.names = append(e.names, named)
	}
	return e
}

func TestSelector(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	busybox := testEntry(t, t0, nil, "docker.io/library/busybox:latest", "docker.io/library/busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3")
	db := testEntry(t, t0.Add(time.Hour), map[string]string{"tier": "db"}, "127.0.0.1:5000/team/db:1")
	dangling := testEntry(t, t0.Add(2*time.Hour), nil)
	digestOnly := testEntry(t, t0, nil, "docker.io/library/x@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3")
	all := map[string]entry{"busybox": busybox, "db": db, "dangling": dangling, "digestOnly": digestOnly}

	cases := []struct {
		filters string
		sel     selector
		want    []string
	}{
		{``, selector{}, []string{"busybox", "db", "dangling", "digestOnly"}},
		{`{"reference":{"busybox":true}}`, selector{}, []string{"busybox"}},
		{`{"reference":{"*/db*":true}}`, selector{}, []string{}},
		{`{"reference":{"127.0.0.1:5000/*/*":true}}`, selector{}, []string{"db"}},
		{`{"reference":{"busybox":true,"*db*":true}}`, selector{}, []string{"busybox"}},
		{`{"label":{"tier=db":true}}`, selector{}, []string{"db"}},
		{`{"label":{"tier":true}}`, selector{}, []string{"db"}},
		{`{"label":{"tier=web":true}}`, selector{}, []string{}},
		{`{"dangling":{"true":true}}`, selector{dangling: true, isSet: true}, []string{"dangling", "digestOnly"}},
		{`{"dangling":{"false":true}}`, selector{dangling: false, isSet: true}, []string{"busybox", "db"}},
		{``, selector{before: t0.Add(time.Hour)}, []string{"busybox", "digestOnly"}},
		{``, selector{since: t0}, []string{"db", "dangling"}},
		{``, selector{until: t0.Add(time.Hour)}, []string{"busybox", "db", "digestOnly"}},
	}
	for _, tc := range cases {
		t.Run(tc.filters+"/"+tc.sel.before.String(), func(t *testing.T) {
			f, err := filters.Parse(tc.filters)
			assert.NilError(t, err)
			sel := tc.sel
			sel.f = f
			got := []string{}
			for _, name := range []string{"busybox", "db", "dangling", "digestOnly"} {
				_, _, ok, err := sel.match(all[name])
				assert.NilError(t, err)
				if ok {
					got = append(got, name)
				}
			}
			assert.DeepEqual(t, got, tc.want)
		})
	}

	// a reference filter narrows the names shown, as in dockerd
	f, _ := filters.Parse(`{"reference":{"busybox:latest":true}}`)
	tags, digests, ok, err := (&selector{f: f}).match(busybox)
	assert.NilError(t, err)
	assert.Check(t, ok)
	assert.DeepEqual(t, tags, []string{"busybox:latest"})
	assert.DeepEqual(t, digests, []string{})
	b, _ := json.Marshal(digests)
	assert.Equal(t, string(b), "[]") // never null on the wire
}

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1700000000", want: time.Unix(1700000000, 0)},
		{in: "1700000000.5", want: time.Unix(1700000000, 500000000)},
		{in: "2024-05-06T07:08:09Z", want: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{in: "yesterday", err: true},
		{in: "12abc", err: true},
	}
	for _, tc := range cases {
		got, err := ParseUntil(tc.in, now)
		if tc.err {
			assert.Check(t, err != nil, tc.in)
			continue
		}
		assert.NilError(t, err, tc.in)
		assert.Check(t, got.Equal(tc.want), "%s: %v != %v", tc.in, got, tc.want)
	}
}

func TestMatchAnyLabel(t *testing.T) {
	labels := map[string]string{"a": "1", "b": "2"}
	assert.Check(t, matchAnyLabel([]string{"a"}, labels))
	assert.Check(t, matchAnyLabel([]string{"x", "b=2"}, labels))
	assert.Check(t, !matchAnyLabel([]string{"b=3"}, labels))
	assert.Check(t, !matchAnyLabel(nil, labels))
}

func TestListFilterKeys(t *testing.T) {
	f, _ := filters.Parse(`{"bogus":{"x":true}}`)
	s := &Service{}
	_, err := s.Images(t.Context(), ListOptions{Filters: f})
	assert.Check(t, is.ErrorContains(err, "invalid filter 'bogus'"))
}
