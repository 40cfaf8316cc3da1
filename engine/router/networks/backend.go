// Package networks routes the network endpoints of the Engine API:
// list, inspect, create, remove, prune (backed by package network) and
// connect/disconnect (backed by the runtime, which owns containers).
package networks

import (
	"context"

	"github.com/berthd/berth/internal/filters"
	"github.com/moby/moby/api/types/network"
)

// Backend manages networks.
type Backend interface {
	// Networks lists networks matching f; invalid filters are ErrInvalidArgument.
	Networks(ctx context.Context, f filters.Args) ([]network.Summary, error)
	// InspectNetwork resolves an id, name or unique id prefix; ErrNotFound
	// "network x not found".
	InspectNetwork(ctx context.Context, idOrName string) (network.Inspect, error)
	// CreateNetwork creates a bridge network; ErrConflict for a name in use.
	CreateNetwork(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	// RemoveNetwork removes a user network; ErrConflict while containers
	// are attached, ErrPermissionDenied for predefined networks.
	RemoveNetwork(ctx context.Context, idOrName string) error
	// PruneNetworks removes unused user networks matching f.
	PruneNetworks(ctx context.Context, f filters.Args) (network.PruneReport, error)
}

// ContainerNetworker connects containers to networks. It is the runtime's:
// a running container is attached at once, a stopped one on its next start.
type ContainerNetworker interface {
	// ConnectContainer: ErrNotFound for an unknown network or container,
	// ErrConflict when the container is connected already, ErrInvalidArgument
	// for a bad endpoint config.
	ConnectContainer(ctx context.Context, networkIDOrName, containerIDOrName string, cfg *network.EndpointSettings) error
	// DisconnectContainer: ErrNotFound for an unknown network or container;
	// ErrNotFound/ErrConflict when not connected, unless force.
	DisconnectContainer(ctx context.Context, networkIDOrName, containerIDOrName string, force bool) error
}
