package containers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/runtime"
	"github.com/moby/moby/api/types/container"
)

func (r *Router) top(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	resp, err := r.b.Top(ctx, vars["name"], req.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}

func (r *Router) stats(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	opts := runtime.StatsOptions{
		Stream:  httputil.BoolValueOrDefault(req, "stream", true),
		OneShot: httputil.BoolValueOrDefault(req, "one-shot", false),
	}
	var enc *json.Encoder
	send := func(s *container.StatsResponse) error {
		if enc == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(w)
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		httputil.Flush(w)
		return nil
	}
	return r.b.Stats(ctx, vars["name"], opts, send)
}

func (r *Router) changes(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	changes, err := r.b.Changes(ctx, vars["name"])
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	return httputil.WriteJSON(w, http.StatusOK, changes)
}

func (r *Router) export(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	tr, err := r.b.Export(ctx, vars["name"])
	if err != nil {
		return err
	}
	defer tr.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, tr)
	return nil
}
