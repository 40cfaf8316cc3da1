package system

import "github.com/berthd/berth/engine/httputil"

// Router serves the system endpoints.
type Router struct {
	info   InfoBackend
	events EventsBackend
	df     DiskUsageBackend
}

// New returns the system router.
func New(info InfoBackend, events EventsBackend, df DiskUsageBackend) *Router {
	return &Router{info: info, events: events, df: df}
}

// Routes implements httputil.Router.
func (s *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/_ping", s.ping),
		httputil.NewHeadRoute("/_ping", s.ping),
		httputil.NewGetRoute("/version", s.version),
		httputil.NewGetRoute("/info", s.getInfo),
		httputil.NewGetRoute("/events", s.getEvents),
		httputil.NewGetRoute("/system/df", s.diskUsage),
	}
}
