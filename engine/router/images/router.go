// Package images routes the image endpoints of the Engine API (list,
// inspect, history, tag, remove, prune, pull, push, load, save) and
// POST /auth, the registry login the docker CLI does before a pull or push,
// and GET /distribution/{name}/json, which asks a registry about a reference.
package images

import "github.com/berthd/berth/engine/httputil"

// Router serves the image endpoints.
type Router struct {
	backend Backend
}

// New returns the image router.
func New(b Backend) *Router {
	return &Router{backend: b}
}

// Routes implements httputil.Router.
func (ir *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/images/json", ir.getImages),
		httputil.NewGetRoute("/images/get", ir.getImagesGet),
		httputil.NewGetRoute("/images/{name:.*}/get", ir.getImagesGet),
		httputil.NewGetRoute("/images/{name:.*}/history", ir.getImageHistory),
		httputil.NewGetRoute("/images/{name:.*}/json", ir.getImage),
		httputil.NewPostRoute("/images/load", ir.postImagesLoad),
		httputil.NewPostRoute("/images/create", ir.postImagesCreate),
		httputil.NewPostRoute("/images/prune", ir.postImagesPrune),
		httputil.NewPostRoute("/images/{name:.*}/push", ir.postImagePush),
		httputil.NewPostRoute("/images/{name:.*}/tag", ir.postImageTag),
		httputil.NewDeleteRoute("/images/{name:.*}", ir.deleteImage),
		httputil.NewPostRoute("/auth", ir.postAuth),
		httputil.NewGetRoute("/distribution/{name:.*}/json", ir.getDistribution),
	}
}
