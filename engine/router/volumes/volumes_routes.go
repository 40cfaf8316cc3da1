package volumes

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
)

func (v *Router) getVolumesList(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	f, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	vols, warnings, err := v.backend.List(ctx, f)
	if err != nil {
		return err
	}
	resp := volume.ListResponse{Volumes: make([]volume.Volume, 0, len(vols)), Warnings: warnings}
	for _, vol := range vols {
		resp.Volumes = append(resp.Volumes, *vol)
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}

func (v *Router) getVolumeByName(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	vol, err := v.backend.Get(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, vol)
}

func (v *Router) postVolumesCreate(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req volume.CreateRequest
	if err := httputil.ReadJSON(r, &req, false); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return errdefs.ErrUnavailable.WithMessage("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")
	}
	vol, err := v.backend.Create(ctx, req)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusCreated, vol)
}

// putVolumesUpdate exists for cluster volumes only; berth has no swarm.
func (v *Router) putVolumesUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return errdefs.ErrUnavailable.WithMessage("volume update only valid for cluster volumes, but swarm is unavailable")
}

func (v *Router) deleteVolumes(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	if err := v.backend.Remove(ctx, vars["name"], httputil.BoolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (v *Router) postVolumesPrune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	f, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	if compat.PruneAllVolumes(httputil.VersionFromContext(ctx)) {
		f.Add("all", "true")
	}
	rep, err := v.backend.Prune(ctx, f)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, rep)
}
