package volumes

import "github.com/berthd/berth/engine/httputil"

// Router serves the volume endpoints.
type Router struct {
	backend Backend
}

// New returns the volume router.
func New(b Backend) *Router {
	return &Router{backend: b}
}

// Routes implements httputil.Router.
func (v *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/volumes", v.getVolumesList),
		httputil.NewGetRoute("/volumes/{name:.*}", v.getVolumeByName),
		httputil.NewPostRoute("/volumes/create", v.postVolumesCreate),
		httputil.NewPostRoute("/volumes/prune", v.postVolumesPrune),
		httputil.NewPutRoute("/volumes/{name:.*}", v.putVolumesUpdate),
		httputil.NewDeleteRoute("/volumes/{name:.*}", v.deleteVolumes),
	}
}
