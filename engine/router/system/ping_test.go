package system

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berth/engine"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestPingAdvertisesBuildKit: clients choose BuildKit from /_ping's
// Builder-Version (the docker CLI, buildx, compose), GET and HEAD alike.
func TestPingAdvertisesBuildKit(t *testing.T) {
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(nil, nil, nil))
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(m, "/_ping", nil))
		assert.Check(t, is.Equal(rec.Code, http.StatusOK), m)
		assert.Check(t, is.Equal(rec.Header().Get("Builder-Version"), "2"), m)
	}
}
