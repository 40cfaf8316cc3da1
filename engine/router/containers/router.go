package containers

import (
	"context"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/runtime"
	"github.com/moby/moby/api/types/container"
)

// Router serves /containers and /exec.
type Router struct {
	b         backend
	startExec func(ctx context.Context, execID string, req container.ExecStartRequest) (ExecStream, error)
	attachTo  func(ctx context.Context, name string, opts runtime.AttachOptions) (AttachStream, error)
}

// New returns the containers router.
func New[X ExecStream, A AttachStream](b Backend[X, A]) *Router {
	start := func(ctx context.Context, execID string, req container.ExecStartRequest) (ExecStream, error) {
		run, err := b.ExecStart(ctx, execID, req)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return run, nil
	}
	attach := func(ctx context.Context, name string, opts runtime.AttachOptions) (AttachStream, error) {
		a, err := b.Attach(ctx, name, opts)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
	return &Router{b: b, startExec: start, attachTo: attach}
}

// Routes implements httputil.Router.
func (r *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/containers/json", r.list),
		httputil.NewGetRoute("/containers/{name:.*}/json", r.inspect),
		httputil.NewGetRoute("/containers/{name:.*}/logs", r.logs),
		httputil.NewGetRoute("/containers/{name:.*}/top", r.top),
		httputil.NewGetRoute("/containers/{name:.*}/stats", r.stats),
		httputil.NewGetRoute("/containers/{name:.*}/changes", r.changes),
		httputil.NewGetRoute("/containers/{name:.*}/export", r.export),
		httputil.NewHeadRoute("/containers/{name:.*}/archive", r.headArchive),
		httputil.NewGetRoute("/containers/{name:.*}/archive", r.getArchive),
		httputil.NewPutRoute("/containers/{name:.*}/archive", r.putArchive),
		httputil.NewPostRoute("/containers/create", r.create),
		httputil.NewPostRoute("/containers/prune", r.prune),
		httputil.NewPostRoute("/containers/{name:.*}/start", r.start),
		httputil.NewPostRoute("/containers/{name:.*}/stop", r.stop),
		httputil.NewPostRoute("/containers/{name:.*}/restart", r.restart),
		httputil.NewPostRoute("/containers/{name:.*}/kill", r.kill),
		httputil.NewPostRoute("/containers/{name:.*}/pause", r.pause),
		httputil.NewPostRoute("/containers/{name:.*}/unpause", r.unpause),
		httputil.NewPostRoute("/containers/{name:.*}/wait", r.wait),
		httputil.NewPostRoute("/containers/{name:.*}/rename", r.rename),
		httputil.NewPostRoute("/containers/{name:.*}/update", r.update),
		httputil.NewPostRoute("/commit", r.commit),
		httputil.NewPostRoute("/containers/{name:.*}/resize", r.resize),
		httputil.NewPostRoute("/containers/{name:.*}/attach", r.attach),
		httputil.NewPostRoute("/containers/{name:.*}/exec", r.execCreate),
		httputil.NewDeleteRoute("/containers/{name:.*}", r.remove),
		httputil.NewPostRoute("/exec/{id:.*}/start", r.execStart),
		httputil.NewPostRoute("/exec/{id:.*}/resize", r.execResize),
		httputil.NewGetRoute("/exec/{id:.*}/json", r.execInspect),
	}
}
