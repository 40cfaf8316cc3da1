package httputil

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestReadJSONContentType(t *testing.T) {
	cases := []struct {
		name, ct, body string
		wantErr        string // "" : decoded
	}{
		{"json", "application/json", `{"A":1}`, ""},
		{"json with charset", "application/json; charset=utf-8", `{"A":1}`, ""},
		{"no type (old clients)", "", `{"A":1}`, ""},
		{"text with no body (attach)", "text/plain", "", ""},
		{"text", "text/plain", `{"A":1}`, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"form", "application/x-www-form-urlencoded", `{"A":1}`, "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"},
		{"json prefix", "application/jsonx", `{"A":1}`, "unsupported Content-Type header (application/jsonx)"},
		{"malformed", "application/json; =", `{"A":1}`, "malformed Content-Type header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/containers/create", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			var v struct{ A int }
			err := ReadJSON(r, &v, true)
			if tc.wantErr == "" {
				assert.NilError(t, err)
				if tc.body != "" {
					assert.Equal(t, v.A, 1)
				}
				return
			}
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.wantErr))
		})
	}
}

// A JSON body larger than MaxJSONBody is a 400, read no further than the
// bound; one just under it decodes.
func TestReadJSONBodyLimit(t *testing.T) {
	big := `{"A":1,"Pad":"` + strings.Repeat("x", MaxJSONBody) + `"}`
	r := httptest.NewRequest("POST", "/containers/create", strings.NewReader(big))
	r.Header.Set("Content-Type", "application/json")
	var v struct {
		A   int
		Pad string
	}
	err := ReadJSON(r, &v, false)
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.ErrorContains(err, "request body is larger than 16 MiB"))

	ok := `{"A":1,"Pad":"` + strings.Repeat("x", MaxJSONBody-100) + `"}`
	r = httptest.NewRequest("POST", "/containers/create", strings.NewReader(ok))
	assert.NilError(t, ReadJSON(r, &v, false))
	assert.Check(t, is.Equal(v.A, 1))
}
