package debug

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/inventory"
	"gotest.tools/v3/assert"
)

type fake struct {
	r   *inventory.Report
	err error
}

func (f fake) Inventory(ctx context.Context) (*inventory.Report, error) { return f.r, f.err }

func get(t *testing.T, b Backend, path string) *httptest.ResponseRecorder {
	t.Helper()
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(b))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestInventory(t *testing.T) {
	want := &inventory.Report{Mounts: []string{"/data/storage/overlay"}, Veths: []string{"vb1"}, Monitors: []int{42}, Addresses: 1, Goroutines: 9}
	for _, path := range []string{"/berth/debug/inventory", "/v1.56/berth/debug/inventory"} {
		rec := get(t, fake{r: want}, path)
		assert.Equal(t, rec.Code, http.StatusOK, path)
		var got inventory.Report
		assert.NilError(t, json.NewDecoder(rec.Body).Decode(&got))
		assert.DeepEqual(t, &got, want)
	}
	rec := get(t, fake{err: errors.New("netlink: boom")}, "/berth/debug/inventory")
	assert.Equal(t, rec.Code, http.StatusInternalServerError)
}

// TestProfile: a runtime profile in pprof's format (gzipped protobuf), after
// a collection when asked; an unknown profile is a 404.
func TestProfile(t *testing.T) {
	for _, path := range []string{"/berth/debug/pprof/heap?gc=1", "/berth/debug/pprof/goroutine", "/v1.56/berth/debug/pprof/threadcreate"} {
		rec := get(t, fake{}, path)
		assert.Equal(t, rec.Code, http.StatusOK, path)
		b := rec.Body.Bytes()
		assert.Assert(t, len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b, "%s: not a gzipped profile", path)
	}
	rec := get(t, fake{}, "/berth/debug/pprof/nosuch")
	assert.Equal(t, rec.Code, http.StatusNotFound)
	assert.Assert(t, strings.Contains(rec.Body.String(), "no such profile: nosuch"))
}

// TestCPUProfile: a CPU profile of the asked seconds; bad seconds are a 400;
// a second profile while one runs is a 409.
func TestCPUProfile(t *testing.T) {
	rec := get(t, fake{}, "/berth/debug/pprof/profile?seconds=1")
	assert.Equal(t, rec.Code, http.StatusOK)
	b := rec.Body.Bytes()
	assert.Assert(t, len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b, "not a gzipped profile")
	for _, v := range []string{"0", "121", "x", "-1"} {
		rec := get(t, fake{}, "/berth/debug/pprof/profile?seconds="+v)
		assert.Equal(t, rec.Code, http.StatusBadRequest, v)
	}
	// two at once: one profiles, the other is refused (retried when the two
	// happened not to overlap)
	for round := 0; ; round++ {
		codes := make(chan int, 2)
		for range 2 {
			go func() { codes <- get(t, fake{}, "/berth/debug/pprof/profile?seconds=2").Code }()
		}
		a, b := <-codes, <-codes
		if a == http.StatusOK && b == http.StatusOK && round < 3 {
			continue
		}
		assert.Equal(t, min(a, b), http.StatusOK)
		assert.Equal(t, max(a, b), http.StatusConflict)
		return
	}
}
