package compose

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/engine"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fake struct {
	unimplemented
	up   compose.UpRequest
	down compose.DownRequest
	ps   string
}

func (f *fake) Up(_ context.Context, req compose.UpRequest) (*compose.UpResult, error) {
	f.up = req
	if req.ProjectName == "bad" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("dependency cycle detected: a -> b -> a")
	}
	return &compose.UpResult{Project: req.ProjectName, Actions: []compose.Action{{Kind: "Container", Name: "p-a-1", Action: "Created"}}}, nil
}

func (f *fake) Down(_ context.Context, req compose.DownRequest) (*compose.UpResult, error) {
	f.down = req
	return &compose.UpResult{Project: req.Project}, nil
}

func (f *fake) Ps(_ context.Context, project string) ([]compose.Deployment, error) {
	f.ps = project
	return nil, nil
}

func serve(t *testing.T, f *fake, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return serveB(t, f, method, path, body)
}

func serveB(t *testing.T, b Backend, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	h := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(b)).Handler()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRoutes(t *testing.T) {
	f := &fake{}
	w := serve(t, f, http.MethodPost, "/berth/compose/up", `{"ConfigFiles":["/srv/compose.yaml"],"ProjectName":"p","Environment":["A=b"],"Wait":true}`)
	assert.Check(t, is.Equal(w.Code, http.StatusOK), w.Body.String())
	var res compose.UpResult
	assert.NilError(t, json.Unmarshal(w.Body.Bytes(), &res))
	assert.Check(t, is.Equal(res.Actions[0].Name, "p-a-1"))
	assert.Check(t, is.DeepEqual(f.up.ConfigFiles, []string{"/srv/compose.yaml"}))
	assert.Check(t, f.up.Wait)
	assert.Check(t, is.DeepEqual(f.up.Environment, []string{"A=b"}))

	w = serve(t, f, http.MethodPost, "/v1.56/berth/compose/up", `{"ProjectName":"bad"}`)
	assert.Check(t, is.Equal(w.Code, http.StatusBadRequest))
	assert.Check(t, is.Contains(w.Body.String(), "dependency cycle detected"))

	w = serve(t, f, http.MethodPost, "/berth/compose/up", `{`)
	assert.Check(t, is.Equal(w.Code, http.StatusBadRequest))

	w = serve(t, f, http.MethodPost, "/berth/compose/down?project=shop&volumes=1&t=0", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK), w.Body.String())
	assert.Check(t, is.Equal(f.down.Project, "shop"))
	assert.Check(t, f.down.Volumes)
	assert.Assert(t, f.down.Timeout != nil)
	assert.Check(t, is.Equal(*f.down.Timeout, 0))

	w = serve(t, f, http.MethodPost, "/berth/compose/down", "")
	assert.Check(t, is.Equal(w.Code, http.StatusBadRequest))

	w = serve(t, f, http.MethodGet, "/berth/compose/ps?project=blog", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	assert.Check(t, is.Equal(strings.TrimSpace(w.Body.String()), "[]"))
	assert.Check(t, is.Equal(f.ps, "blog"))
}
