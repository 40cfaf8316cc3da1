// Package session routes BuildKit's two endpoints: POST /session (a build
// session the client serves: its files, secrets, credentials) and POST
// /grpc (the Control API, upgraded to h2c). gRPC sent as HTTP/2 straight on
// the socket does not come through here: engine.Config.GRPC serves it.
package session

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
)

// Backend is BuildKit (builder/buildkit.Service). Both methods hijack the
// connection and return when the client closes it.
type Backend interface {
	ServeSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error
	ServeUpgrade(ctx context.Context, w http.ResponseWriter, r *http.Request) error
}

// Router serves /session and /grpc.
type Router struct {
	b Backend
}

// New returns the session router.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputil.Router.
func (rt *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewPostRoute("/session", rt.session),
		httputil.NewPostRoute("/grpc", rt.grpc),
	}
}

func (rt *Router) session(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := rt.b.ServeSession(ctx, w, r); err != nil {
		// dockerd answers every refused session as a bad request
		if !errdefs.IsInvalidArgument(err) {
			err = errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		return err
	}
	return nil
}

func (rt *Router) grpc(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return rt.b.ServeUpgrade(ctx, w, r)
}
