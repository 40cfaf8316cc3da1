package containers

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
)

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	limit, err := httputil.Int64Value(req, "limit", -1)
	if err != nil {
		return err
	}
	list, err := r.b.List(ctx, runtime.ListOptions{
		All:     httputil.BoolValue(req, "all"),
		Limit:   int(limit),
		Size:    httputil.BoolValue(req, "size"),
		Filters: f,
	})
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, list)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	resp, err := r.b.Inspect(ctx, vars["name"], httputil.BoolValue(req, "size"))
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}
