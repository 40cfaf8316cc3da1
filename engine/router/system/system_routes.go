package system

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
)

func (s *Router) ping(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
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
