// Package debug routes berth's own diagnostics, beside the Engine API,
// under /berth/debug/ so they never collide with a Docker endpoint.
//
//	GET /berth/debug/inventory -> 200 inventory.Report
//	GET /berth/debug/pprof/{name}[?gc=1] -> 200 runtime/pprof profile (heap, goroutine, threadcreate, allocs, ...)
//	GET /berth/debug/pprof/profile[?seconds=10] -> 200 CPU profile of the next seconds (1..120; 409 while another runs)
package debug

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/inventory"
	"github.com/containerd/errdefs"
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
		httputil.NewGetRoute("/berth/debug/pprof/{name}", d.getProfile),
	}
}

func (d *Router) getInventory(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	inv, err := d.backend.Inventory(ctx)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, inv)
}

// getProfile writes one of the runtime's profiles in pprof's format (go tool
// pprof reads it); gc=1 collects first, so that a heap profile's in-use
// figures are the live heap's.
func (d *Router) getProfile(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if vars["name"] == "profile" {
		return cpuProfile(ctx, w, r)
	}
	p := pprof.Lookup(vars["name"])
	if p == nil {
		return errdefs.ErrNotFound.WithMessage("no such profile: " + vars["name"])
	}
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	// debug=1: the text form (for heap, with the runtime's MemStats)
	if r.URL.Query().Get("debug") == "1" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return p.WriteTo(w, 1)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	return p.WriteTo(w, 0)
}

// maxCPUSeconds bounds a CPU profile's length.
const maxCPUSeconds = 120

// cpuProfile profiles the process's CPU for ?seconds= (default 10), or
// until the client goes, and writes the profile in pprof's format.
func cpuProfile(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	secs := 10
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxCPUSeconds {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid seconds %q: 1 to %d", v, maxCPUSeconds))
		}
		secs = n
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := pprof.StartCPUProfile(w); err != nil {
		return errdefs.ErrConflict.WithMessage("a CPU profile is already running: " + err.Error())
	}
	t := time.NewTimer(time.Duration(secs) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return nil
}
