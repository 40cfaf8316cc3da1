// Package refused answers routes a backend does not serve with 501 Not
// Implemented and a message naming the backend, so that a client learns
// the endpoint exists but is not served here, never a silent success or a
// 404 that reads like a typo.
package refused

import (
	"context"
	"net/http"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/engine/httputil"
)

// Router answers each of its routes 501.
type Router struct {
	routes []httputil.Route
}

// New refuses the routes of rts, each with "<endpoint> is not supported by
// <backend>". Mount it after the routers that serve: the first route that
// matches a request wins.
func New(backend string, rts ...httputil.Router) *Router {
	r := &Router{}
	for _, rt := range rts {
		for _, route := range rt.Routes() {
			msg := route.Method + " " + route.Path + " is not supported by " + backend
			r.routes = append(r.routes, httputil.Route{Method: route.Method, Path: route.Path, Handler: refuse(msg)})
		}
	}
	return r
}

// Only keeps the routes of rt whose path is one of paths.
func Only(rt httputil.Router, paths ...string) httputil.Router {
	var out routes
	for _, route := range rt.Routes() {
		if slices.Contains(paths, route.Path) {
			out = append(out, route)
		}
	}
	return out
}

type routes []httputil.Route

func (r routes) Routes() []httputil.Route { return r }

// Routes implements httputil.Router.
func (r *Router) Routes() []httputil.Route { return r.routes }

func refuse(msg string) httputil.APIFunc {
	return func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return errdefs.ErrNotImplemented.WithMessage(msg)
	}
}
