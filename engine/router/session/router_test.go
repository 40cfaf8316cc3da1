package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berth/engine"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fake struct {
	sessionErr, upgradeErr error
	calls                  []string
}

func (f *fake) ServeSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f.calls = append(f.calls, "session "+r.Header.Get("X-Docker-Expose-Session-Uuid"))
	return f.sessionErr
}

func (f *fake) ServeUpgrade(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f.calls = append(f.calls, "grpc "+r.Header.Get("Upgrade"))
	return f.upgradeErr
}

func serve(f *fake, path string, hdr map[string]string) *httptest.ResponseRecorder {
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(f))
	req := httptest.NewRequest(http.MethodPost, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	f := &fake{}
	assert.Check(t, is.Equal(serve(f, "/v1.44/session", map[string]string{"X-Docker-Expose-Session-Uuid": "s1"}).Code, http.StatusOK))
	assert.Check(t, is.Equal(serve(f, "/grpc", map[string]string{"Upgrade": "h2c"}).Code, http.StatusOK))
	assert.Check(t, is.DeepEqual(f.calls, []string{"session s1", "grpc h2c"}))

	// a refused session is the client's fault, as dockerd answers it
	rec := serve(&fake{sessionErr: errors.New("session s1 already exists")}, "/session", nil)
	assert.Check(t, is.Equal(rec.Code, http.StatusBadRequest))
	assert.Check(t, is.Contains(rec.Body.String(), "session s1 already exists"))
	rec = serve(&fake{upgradeErr: errdefs.ErrInvalidArgument.WithMessage(`protocol "x" not supported (want h2c)`)}, "/grpc", nil)
	assert.Check(t, is.Equal(rec.Code, http.StatusBadRequest))
	assert.Check(t, is.Equal(serve(&fake{}, "/session", nil).Code, http.StatusOK))
	rec = httptest.NewRecorder()
	engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(&fake{})).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/session", nil))
	assert.Check(t, is.Equal(rec.Code, http.StatusNotFound), "POST only")
}
