package containers

import (
	"context"
	"net/http"
	"strconv"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	var body createBody
	if err := httputil.ReadJSON(req, &body, false); err != nil {
		return err
	}
	if body.Config == nil {
		return errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	version := httputil.VersionFromContext(ctx)
	if body.HostConfig == nil {
		body.HostConfig = &container.HostConfig{}
	}
	if body.NetworkingConfig == nil {
		body.NetworkingConfig = &network.NetworkingConfig{}
	}
	warning, err := containerWideMAC(body.MacAddress, body.HostConfig, body.NetworkingConfig, version)
	if err != nil {
		return err
	}
	if compat.DefaultIPCShareable(version) {
		// clients older than 1.40 expect dockerd's old default IPC mode
		if body.HostConfig.IpcMode == "" {
			body.HostConfig.IpcMode = container.IPCModeShareable
		}
	}
	var platform string
	if compat.CreatePlatform(version) {
		platform = req.Form.Get("platform")
	}
	if err := compat.CheckMounts(version, body.HostConfig); err != nil {
		return err
	}
	resp, err := r.b.Create(ctx, runtime.CreateRequest{
		Name:                        req.Form.Get("name"),
		Config:                      body.Config,
		HostConfig:                  body.HostConfig,
		NetworkingConfig:            body.NetworkingConfig,
		DefaultNetworkOnly:          compat.DefaultNetworkOnly(version),
		DefaultReadOnlyNonRecursive: compat.ReadOnlyNonRecursive(version),
		Platform:                    platform,
	})
	if err != nil {
		return err
	}
	if warning != "" {
		resp.Warnings = append(resp.Warnings, warning)
	}
	return httputil.WriteJSON(w, http.StatusCreated, resp)
}

func (r *Router) start(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.b.Start(ctx, vars["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopParams reads t (seconds) and signal.
func stopParams(req *http.Request) (string, *int, error) {
	if err := httputil.ParseForm(req); err != nil {
		return "", nil, err
	}
	var timeout *int
	if t := req.Form.Get("t"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil {
			return "", nil, errdefs.ErrInvalidArgument.WithMessage("invalid value for t: " + t)
		}
		timeout = &v
	}
	return req.Form.Get("signal"), timeout, nil
}

func (r *Router) stop(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	sig, timeout, err := stopParams(req)
	if err != nil {
		return err
	}
	if err := r.b.Stop(ctx, vars["name"], sig, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) restart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	sig, timeout, err := stopParams(req)
	if err != nil {
		return err
	}
	if err := r.b.Restart(ctx, vars["name"], sig, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) kill(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	if err := r.b.Kill(ctx, vars["name"], req.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) pause(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.b.Pause(ctx, vars["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) unpause(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.b.Unpause(ctx, vars["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// wait answers the status line at once, like dockerd, so a client knows the
// wait is in place before it starts the container; the body follows at exit.
func (r *Router) wait(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	ch, err := r.b.Wait(ctx, vars["name"], container.WaitCondition(req.Form.Get("condition")))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	httputil.Flush(w)
	res := <-ch
	if res.Err != nil {
		return nil // the client went away
	}
	resp := container.WaitResponse{StatusCode: int64(res.ExitCode)}
	return httputil.WriteJSONBody(w, resp)
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	if httputil.BoolValue(req, "link") {
		if err := r.b.RemoveLink(ctx, vars["name"]); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	err := r.b.Remove(ctx, vars["name"], runtime.RemoveOptions{
		Force:         httputil.BoolValue(req, "force"),
		RemoveVolumes: httputil.BoolValue(req, "v"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) rename(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	if err := r.b.Rename(ctx, vars["name"], req.Form.Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commit is POST /commit (docker commit): an image of a container.
func (r *Router) commit(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	var cfg *container.Config
	if err := httputil.ReadJSON(req, &cfg, true); err != nil {
		return err
	}
	id, err := r.b.Commit(ctx, req.Form.Get("container"), runtime.CommitOptions{
		Repo: req.Form.Get("repo"), Tag: req.Form.Get("tag"),
		Author: req.Form.Get("author"), Comment: req.Form.Get("comment"),
		Changes: req.Form["changes"], Config: cfg,
		Pause: httputil.BoolValueOrDefault(req, "pause", true),
	})
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}

func (r *Router) update(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var cfg container.UpdateConfig
	if err := httputil.ReadJSON(req, &cfg, false); err != nil {
		return err
	}
	resp, err := r.b.Update(ctx, vars["name"], cfg)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	report, err := r.b.Prune(ctx, f)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, report)
}
