package main

import (
	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/events"
	"github.com/berthd/berth/network"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/store"
	"github.com/berthd/berth/volume"
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
		Puller: imgs, Records: records, Executions: executions, Events: bus,
	})
}
