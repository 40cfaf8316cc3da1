package compose

import (
	"context"
	"net/http"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
)

func (c *Router) postUp(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req compose.UpRequest
	if err := httputil.ReadJSON(r, &req, false); err != nil {
		return err
	}
	res, err := c.backend.Up(ctx, req)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, res)
}

func (c *Router) postDown(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	req := compose.DownRequest{Project: r.Form.Get("project"), Volumes: httputil.BoolValue(r, "volumes")}
	if r.Form.Get("t") != "" {
		t, err := httputil.Int64Value(r, "t", 0)
		if err != nil {
			return err
		}
		secs := int(t)
		req.Timeout = &secs
	}
	if req.Project == "" {
		return errdefs.ErrInvalidArgument.WithMessage("project is required")
	}
	res, err := c.backend.Down(ctx, req)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, res)
}

func (c *Router) getPs(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	view, err := c.backend.Ps(ctx, r.Form.Get("project"))
	if err != nil {
		return err
	}
	if view == nil {
		view = []compose.Deployment{}
	}
	return httputil.WriteJSON(w, http.StatusOK, view)
}
