package debug

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
