package networks

import "github.com/berthd/berth/engine/httputil"

// Router serves /networks.
type Router struct {
	backend    Backend
	containers ContainerNetworker
}

// New returns the networks router.
func New(b Backend, c ContainerNetworker) *Router {
	return &Router{backend: b, containers: c}
}

// Routes implements httputil.Router.
func (r *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/networks", r.list),
		httputil.NewGetRoute("/networks/", r.list),
		httputil.NewGetRoute("/networks/{id:.+}", r.inspect),
		httputil.NewPostRoute("/networks/create", r.create),
		httputil.NewPostRoute("/networks/prune", r.prune),
		httputil.NewPostRoute("/networks/{id:.*}/connect", r.connect),
		httputil.NewPostRoute("/networks/{id:.*}/disconnect", r.disconnect),
		httputil.NewDeleteRoute("/networks/{id:.*}", r.remove),
	}
}
