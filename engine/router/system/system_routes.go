package system

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berthd/berth/sysinfo"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/system"

	"github.com/berthd/berth/engine/httputil"
)

func (s *Router) ping(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	// clients build with BuildKit (served on /grpc and /session)
	h.Set("Builder-Version", string(build.BuilderBuildKit))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("OK"))
	}
	return nil
}

func (s *Router) version(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return httputil.WriteJSON(w, http.StatusOK, s.info.Version(ctx))
}

func (s *Router) getInfo(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	info, err := s.info.Info(ctx)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, info)
}

func (s *Router) diskUsage(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	var kinds sysinfo.Kinds
	for _, t := range r.Form["type"] {
		switch system.DiskUsageObject(t) {
		case system.ContainerObject:
			kinds.Containers = true
		case system.ImageObject:
			kinds.Images = true
		case system.VolumeObject:
			kinds.Volumes = true
		case system.BuildCacheObject:
			kinds.BuildCache = true
		default:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown object type: %s", t))
		}
	}
	du, err := s.df.DiskUsage(ctx, kinds)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, du)
}
