package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

type fakeRouter []httputil.Route

func (f fakeRouter) Routes() []httputil.Route { return f }

func newTestServer() *Server {
	return New(Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, fakeRouter{
		httputil.NewGetRoute("/containers/{name:.*}/json", func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			if vars["name"] == "missing" {
				return errdefs.ErrNotFound.WithMessage("No such container: missing")
			}
			return httputil.WriteJSON(w, 200, map[string]any{"Id": vars["name"], "NetworkSettings": map[string]any{
				"Networks": map[string]any{"bridge": map[string]any{"IPAddress": "10.210.0.2", "Gateway": "10.210.0.1"}},
			}})
		}),
		httputil.NewGetRoute("/events", func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			s := httputil.NewJSONStream(w)
			_ = s.Send(map[string]any{"Type": "container", "Action": "start", "Actor": map[string]any{"ID": "abc", "Attributes": map[string]any{"image": "busybox"}}})
			return nil
		}),
	})
}

func get(t *testing.T, s *Server, path string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	var v map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	return rec, v
}

func TestVersionNegotiation(t *testing.T) {
	s := newTestServer()
	cases := []struct {
		path   string
		status int
		msg    string
	}{
		{"/containers/x/json", 200, ""},
		{"/v1.41/containers/x/json", 200, ""},
		{"/v1.57/containers/x/json", 400, "client version 1.57 is too new. Maximum supported API version is 1.56"},
		{"/v1.23/containers/x/json", 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1.41/containers/missing/json", 404, "No such container: missing"},
		{"/v1.41/nope", 404, "page not found"},
	}
	for _, tc := range cases {
		rec, v := get(t, s, tc.path)
		assert.Equal(t, rec.Code, tc.status, tc.path)
		if tc.msg != "" {
			assert.Equal(t, v["message"], tc.msg, tc.path)
		}
	}
}

func TestCompatLegacyNetworkSettings(t *testing.T) {
	s := newTestServer()
	_, old := get(t, s, "/v1.41/containers/x/json")
	ns := old["NetworkSettings"].(map[string]any)
	assert.Equal(t, ns["IPAddress"], "10.210.0.2")
	assert.Equal(t, ns["Gateway"], "10.210.0.1")
	_, cur := get(t, s, "/v1.52/containers/x/json")
	_, has := cur["NetworkSettings"].(map[string]any)["IPAddress"]
	assert.Check(t, !has, "new API versions do not get the legacy fields")
}

func TestCompatLegacyEvents(t *testing.T) {
	s := newTestServer()
	_, old := get(t, s, "/v1.41/events")
	assert.Equal(t, old["status"], "start")
	assert.Equal(t, old["id"], "abc")
	assert.Equal(t, old["from"], "busybox")
	_, cur := get(t, s, "/v1.52/events")
	_, has := cur["status"]
	assert.Check(t, !has)
}

func TestLoggedURIHidesBuildArgs(t *testing.T) {
	for in, want := range map[string]string{
		"/v1.41/build?t=a&buildargs=%7B%22TOKEN%22%3A%22secret%22%7D": "/v1.41/build?buildargs=redacted&t=a",
		"/containers/json?all=1": "/containers/json?all=1",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := loggedURI(u); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

// A handler that panics answers 500 and the server goes on serving.
func TestHandlerPanicIsA500(t *testing.T) {
	s := New(Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, fakeRouter{
		httputil.NewGetRoute("/boom", func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			var m map[string]int
			m["x"]++
			return nil
		}),
		httputil.NewGetRoute("/late", func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial"))
			panic("after the answer started")
		}),
	})
	for range 2 {
		rec, body := get(t, s, "/v1.41/boom")
		assert.Equal(t, rec.Code, http.StatusInternalServerError)
		assert.Assert(t, strings.Contains(body["message"].(string), "assignment to entry in nil map"), "%v", body)
	}
	rec, _ := get(t, s, "/late")
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Equal(t, rec.Body.String(), "partial") // no error written into the answer
	_, body := get(t, s, "/v1.41/nope")
	assert.Equal(t, body["message"], "page not found")
}
