package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/engine/httputil"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// serveUnix serves s on a unix socket and returns clients speaking HTTP/1
// and HTTP/2 with prior knowledge (what gRPC clients send) to it.
func serveUnix(t *testing.T, s *Server) (h1, h2 *http.Client) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}
	p2 := new(http.Protocols)
	p2.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{DialContext: dial}},
		&http.Client{Transport: &http.Transport{DialContext: dial, Protocols: p2}}
}

func pingRouter() fakeRouter {
	return fakeRouter{httputil.NewGetRoute("/_ping", func(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
		_, err := w.Write([]byte("OK " + r.Proto))
		return err
	})}
}

func TestGRPCOverHTTP2OnTheSocket(t *testing.T) {
	grpc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("grpc " + r.Proto + " " + r.URL.Path))
	})
	h1, h2 := serveUnix(t, New(Config{APIVersion: "1.56", MinAPIVersion: "1.24", GRPC: grpc}, pingRouter()))

	body := func(c *http.Client, req *http.Request) string {
		t.Helper()
		resp, err := c.Do(req)
		assert.NilError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://berth/moby.buildkit.v1.Control/ListWorkers", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/grpc")
	assert.Check(t, is.Equal(body(h2, req), "grpc HTTP/2.0 /moby.buildkit.v1.Control/ListWorkers"))

	// the API answers HTTP/2 that is not gRPC, and HTTP/1 as before
	req, _ = http.NewRequest(http.MethodGet, "http://berth/_ping", nil)
	assert.Check(t, is.Equal(body(h2, req), "OK HTTP/2.0"))
	req, _ = http.NewRequest(http.MethodGet, "http://berth/_ping", nil)
	assert.Check(t, is.Equal(body(h1, req), "OK HTTP/1.1"))
	// gRPC content over HTTP/1 is not gRPC: the API's 404
	req, _ = http.NewRequest(http.MethodPost, "http://berth/moby.buildkit.v1.Control/ListWorkers", nil)
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := h1.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, http.StatusNotFound))
}

func TestNoHTTP2WithoutGRPC(t *testing.T) {
	_, h2 := serveUnix(t, New(Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, pingRouter()))
	req, _ := http.NewRequest(http.MethodGet, "http://berth/_ping", nil)
	resp, err := h2.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	assert.Check(t, err != nil, "a server without gRPC speaks HTTP/1 only")
}
