package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// The real executor asks pods/exec as kubectl does: the websocket protocol
// first (GET), SPDY (POST) when the upgrade fails, with the exec's options
// as query parameters. The server here refuses both upgrades.
func TestRemoteExecutorFallsBackToSPDY(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		http.Error(w, "no upgrade here", http.StatusBadRequest)
	}))
	defer srv.Close()
	cs, err := NewClient(&rest.Config{Host: srv.URL})
	assert.NilError(t, err)
	ex := cs.(client)
	x := remoteExecutor{cfg: ex.cfg, core: ex.core.RESTClient()}
	err = x.Exec(context.Background(), ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Cmd: []string{"sh", "-c", "id"}, Stdout: true, TTY: true},
		remotecommand.StreamOptions{Stdout: &nopWriter{}, Tty: true})
	assert.ErrorContains(t, err, "")
	_, isExit := ExitCode(err)
	assert.Assert(t, !isExit, "a refused upgrade is not an exit: %v", err)
	const q = "command=sh&command=-c&command=id&container=db&stdout=true&tty=true"
	mu.Lock()
	defer mu.Unlock()
	assert.DeepEqual(t, seen, []string{
		"GET /api/v1/namespaces/shop/pods/db-1/exec?" + q,
		"POST /api/v1/namespaces/shop/pods/db-1/exec?" + q,
	})
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
