package backend

import (
	"context"

	"github.com/moby/moby/api/types/system"

	"github.com/berthd/berth/engine/httputil"
	buildrouter "github.com/berthd/berth/engine/router/build"
	composerouter "github.com/berthd/berth/engine/router/compose"
	"github.com/berthd/berth/engine/router/containers"
	"github.com/berthd/berth/engine/router/debug"
	"github.com/berthd/berth/engine/router/images"
	"github.com/berthd/berth/engine/router/networks"
	"github.com/berthd/berth/engine/router/refused"
	"github.com/berthd/berth/engine/router/session"
	systemrouter "github.com/berthd/berth/engine/router/system"
	"github.com/berthd/berth/engine/router/unused"
	"github.com/berthd/berth/engine/router/volumes"
)

// refusedBy names the backend in the 501 answers.
const refusedBy = "the Kubernetes backend"

// Routers are the engine's routers on this backend, in mounting order: the
// served routes, then every route of the single-host routers refused with
// 501 (the first route that matches wins). The refused routers are built
// without backends: only their route tables are read.
func (b *Backend) Routers(v Version) []httputil.Router {
	sys := systemrouter.New(info{b, v}, b.bus, nil)
	return []httputil.Router{
		refused.New(refusedBy, refused.Only(sys, "/system/df")),
		sys,
		containers.New(b),
		composerouter.New(b.Deployments()),
		imageRoutes{b},
		volumes.New(b.Volumes()),
		networks.New(b.Networks(), b.Networks()),
		refused.New(refusedBy,
			images.New(nil), buildrouter.New(nil, nil),
			session.New(nil), debug.New(nil), unused.New()),
	}
}

// info answers /info and /version.
type info struct {
	b *Backend
	v Version
}

func (i info) Info(ctx context.Context) (*system.Info, error) { return i.b.Info(ctx) }

func (i info) Version(ctx context.Context) system.VersionResponse { return i.b.VersionResponse(i.v) }
