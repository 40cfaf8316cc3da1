// Package unused answers for the parts of the Engine API that berth does not
// run, the way a dockerd that does not use them answers: not in a swarm, no
// plugins installed. Clients that probe them (docker info, docker node ls,
// docker plugin ls) then behave as with dockerd, instead of failing on a 404.
package unused

import (
	"context"
	"net/http"

	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/plugin"
)

// Router serves the unused endpoints. It has no backend.
type Router struct{}

// New returns the router.
func New() *Router { return &Router{} }

// dockerd's words for a node that is not in a swarm.
var (
	errNotManager = errdefs.ErrUnavailable.WithMessage(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)
	errNotInSwarm = errdefs.ErrUnavailable.WithMessage("This node is not part of a swarm")
	errNoSwarm    = errdefs.ErrNotImplemented.WithMessage("berthd does not run swarm mode")
)

// Routes implements httputil.Router.
func (u *Router) Routes() []httputil.Route {
	routes := []httputil.Route{
		httputil.NewGetRoute("/swarm", fail(errNotManager)),
		httputil.NewPostRoute("/swarm/init", fail(errNoSwarm)),
		httputil.NewPostRoute("/swarm/join", fail(errNoSwarm)),
		httputil.NewPostRoute("/swarm/leave", fail(errNotInSwarm)),
		httputil.NewPostRoute("/swarm/update", fail(errNotManager)),
		httputil.NewGetRoute("/swarm/unlockkey", fail(errNotManager)),
		httputil.NewPostRoute("/swarm/unlock", fail(errNotManager)),
		httputil.NewGetRoute("/plugins", u.plugins),
	}
	// the swarm objects: every list, inspect, create, update and delete
	for _, kind := range []string{"nodes", "services", "tasks", "secrets", "configs"} {
		for _, p := range []string{"/" + kind, "/" + kind + "/{rest:.*}"} {
			routes = append(routes,
				httputil.NewGetRoute(p, fail(errNotManager)),
				httputil.NewPostRoute(p, fail(errNotManager)),
				httputil.NewDeleteRoute(p, fail(errNotManager)))
		}
	}
	return routes
}

func fail(err error) httputil.APIFunc {
	return func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return err
	}
}

func (u *Router) plugins(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return httputil.WriteJSON(w, http.StatusOK, []plugin.Plugin{})
}
