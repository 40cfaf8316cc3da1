package unused

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berth/engine"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestAnswersLikeAnIdleDockerd(t *testing.T) {
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New())
	notManager := `{"message":"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."}`
	cases := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/v1.47/swarm", 503, notManager},
		{"GET", "/nodes", 503, notManager},
		{"GET", "/v1.47/services/web", 503, notManager},
		{"POST", "/v1.47/services/create", 503, notManager},
		{"DELETE", "/secrets/abc", 503, notManager},
		{"GET", "/configs", 503, notManager},
		{"GET", "/tasks", 503, notManager},
		{"POST", "/swarm/leave", 503, `{"message":"This node is not part of a swarm"}`},
		{"POST", "/swarm/init", 501, `{"message":"berthd does not run swarm mode"}`},
		{"GET", "/v1.47/plugins", 200, `[]`},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, http.NoBody))
			assert.Check(t, is.Equal(rec.Code, tc.code))
			assert.Check(t, is.Equal(rec.Body.String(), tc.body+"\n"))
		})
	}
}
