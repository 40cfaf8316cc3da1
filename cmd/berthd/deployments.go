package main

import (
	"context"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/events"
	"github.com/berthd/berth/network"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/store"
	"github.com/berthd/berth/volume"
	"github.com/moby/moby/api/types/jsonstream"
)

// newDeployments builds the service manager over the services the Engine
// API uses, with its records in the metadata store.
func newDeployments(db *store.DB, rt *runtime.Service, nets *network.Manager, vols *volume.Service, imgs *registry.Service, bus *events.Bus) (*compose.Manager, error) {
	records, err := store.NewTable[compose.DeploymentRecord](db, "compose-deployments")
	if err != nil {
		return nil, err
	}
	executions, err := store.NewTable[compose.JobExecution](db, "compose-executions")
	if err != nil {
		return nil, err
	}
	return compose.NewManager(compose.ManagerDeps{
		Containers: rt, Networks: nets, Volumes: vols, Images: imgs, Logs: rt,
		Puller: imagePuller{imgs}, Records: records, Executions: executions, Events: bus,
	})
}

// imagePuller pulls for deployments as POST /images/create does, with the
// daemon's credentials and no progress to show.
type imagePuller struct{ imgs *registry.Service }

func (p imagePuller) PullImage(ctx context.Context, ref string) error {
	return p.imgs.Pull(ctx, registry.PullOptions{FromImage: ref}, func() registry.Output { return discard{} })
}

// discard is an output nobody reads; an error in the stream is the pull's.
type discard struct{}

func (discard) Send(v any) error {
	if m, ok := v.(jsonstream.Message); ok && m.Error != nil {
		return m.Error
	}
	return nil
}
