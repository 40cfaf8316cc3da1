package images

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/registry"
	"github.com/moby/moby/api/types/image"
)

func (ir *Router) getImages(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	f, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	// API < 1.41 clients may still send the old `filter` parameter: a reference.
	if old := r.Form.Get("filter"); old != "" {
		f.Add("reference", old)
	}
	list, err := ir.backend.Images(ctx, registry.ListOptions{
		All:     httputil.BoolValue(r, "all"),
		Filters: f,
		// manifests came with API 1.47; older clients never see them
		Manifests: httputil.BoolValue(r, "manifests") && compat.ImageManifests(httputil.VersionFromContext(ctx)),
	})
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, list)
}

// imageInspect is image inspect with the legacy builder's Parent, which
// the API types no longer carry but dockerd still answers when it is set.
type imageInspect struct {
	*image.InspectResponse
	Parent string `json:",omitempty"`
}

func (ir *Router) getImage(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := ir.backend.Inspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	parent, err := ir.backend.Parent(ctx, resp.ID)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, imageInspect{InspectResponse: resp, Parent: parent})
}

func (ir *Router) getImageHistory(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	hist, err := ir.backend.History(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, hist)
}

func (ir *Router) postImageTag(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	if err := ir.backend.Tag(ctx, vars["name"], r.Form.Get("repo"), r.Form.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (ir *Router) deleteImage(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	recs, err := ir.backend.Delete(ctx, vars["name"], httputil.BoolValue(r, "force"), !httputil.BoolValue(r, "noprune"))
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, recs)
}

func (ir *Router) postImagesPrune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	f, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := ir.backend.Prune(ctx, f)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, rep)
}
