package filters

import (
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		key      string
		want     []string
		wantErr  bool
	}{
		{"empty", "", "label", []string{}, false},
		{"map form", `{"label":{"a=b":true,"c":true}}`, "label", []string{"a=b", "c"}, false},
		{"legacy list form", `{"status":["running","exited"]}`, "status", []string{"exited", "running"}, false},
		{"garbage", `{"label":`, "", nil, true},
		{"wrong shape", `["a"]`, "", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.in)
			if tc.wantErr {
				assert.Check(t, errdefs.IsInvalidArgument(err), "err=%v", err)
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(a.Get(tc.key), tc.want))
		})
	}
}

func TestMatchKVList(t *testing.T) {
	labels := map[string]string{"com.docker.compose.project": "shop", "tier": "db"}
	cases := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"tier"}, true},
		{[]string{"tier=db"}, true},
		{[]string{"tier=web"}, false},
		{[]string{"missing"}, false},
		{[]string{"com.docker.compose.project=shop", "tier"}, true},
		{[]string{"com.docker.compose.project=shop", "tier=web"}, false},
		{[]string{"tier!=web"}, true},
		{[]string{"tier!=db"}, false},
	}
	for _, tc := range cases {
		a := Args{}
		for _, f := range tc.filters {
			a.Add("label", f)
		}
		assert.Equal(t, a.MatchKVList("label", labels), tc.want, "%v", tc.filters)
	}
}

func TestValidateAndMatchers(t *testing.T) {
	a, err := Parse(`{"name":{"^/web":true},"id":{"abc":true}}`)
	assert.NilError(t, err)
	assert.NilError(t, a.Validate("name", "id"))
	assert.ErrorContains(t, a.Validate("name"), "invalid filter 'id'")
	assert.Check(t, a.Match("name", "/web-1"))
	assert.Check(t, !a.Match("name", "/db"))
	assert.Check(t, a.FuzzyMatch("id", "abcdef"))
	assert.Check(t, !a.FuzzyMatch("id", "bcd"))
	assert.Check(t, a.ExactMatch("other", "x"))
}

func TestGetBool(t *testing.T) {
	a, _ := Parse(`{"dangling":{"true":true}}`)
	v, set, err := a.GetBool("dangling")
	assert.NilError(t, err)
	assert.Check(t, v && set)
	a, _ = Parse(`{"dangling":{"maybe":true}}`)
	_, _, err = a.GetBool("dangling")
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func FuzzParse(f *testing.F) {
	f.Add(`{"label":{"a=b":true}}`)
	f.Add(`{"status":["running"]}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		for _, k := range []string{"label", "name", "status"} {
			_ = a.Get(k)
			_ = a.MatchKVList(k, map[string]string{"a": "b"})
			_ = a.Match(k, "x")
		}
	})
}
