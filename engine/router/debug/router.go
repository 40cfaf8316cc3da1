// Package debug routes berth's own diagnostics, beside the Engine API,
// under /berth/debug/ so they never collide with a Docker endpoint.
//
//	GET /berth/debug/inventory -> 200 inventory.Report
package debug

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/inventory"
)

// Backend is what the debug routes need (*inventory.Taker).
type Backend interface {
	// Inventory counts what the daemon holds on the host right now.
	Inventory(ctx context.Context) (*inventory.Report, error)
}

var _ Backend = (*inventory.Taker)(nil)

// Router serves the debug endpoints.
type Router struct {
	backend Backend
}

// New returns the debug router.
func New(b Backend) *Router {
	return &Router{backend: b}
}

// Routes implements httputil.Router.
func (d *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/berth/debug/inventory", d.getInventory),
	}
}

func (d *Router) getInventory(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	inv, err := d.backend.Inventory(ctx)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, inv)
}
