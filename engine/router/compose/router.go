// Package compose routes berth's own deployment endpoints, beside the Engine
// API: the native compose path (`berth compose up|down|ps`) and the
// deployment view. They live under /berth/ so they can never collide with a
// Docker endpoint.
//
//	POST /berth/compose/up           body compose.UpRequest   -> 200 compose.UpResult
//	POST /berth/compose/down?project=P[&volumes=1][&t=N]        -> 200 compose.UpResult
//	GET  /berth/compose/ps[?project=P]                          -> 200 []compose.Deployment
package compose

import "github.com/berthd/berth/engine/httputil"

// Router serves the deployment endpoints.
type Router struct {
	backend Backend
}

// New returns the deployment router.
func New(b Backend) *Router {
	return &Router{backend: b}
}

// Routes implements httputil.Router.
func (c *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewPostRoute("/berth/compose/up", c.postUp),
		httputil.NewPostRoute("/berth/compose/down", c.postDown),
		httputil.NewGetRoute("/berth/compose/ps", c.getPs),
	}
}
