package main

import (
	"context"

	"github.com/berthd/berth/network"
	"github.com/berthd/berth/runtime"
	networktypes "github.com/moby/moby/api/types/network"
)

// netRuntime lets the network manager serve as runtime.Networks: the
// runtime declares its own request types (same fields as network's), so
// only the conversions live here.
type netRuntime struct{ *network.Manager }

var _ runtime.Networks = netRuntime{}

func (n netRuntime) Attach(ctx context.Context, nsPath string, req runtime.AttachRequest) (*networktypes.EndpointSettings, error) {
	return n.Manager.Attach(ctx, nsPath, network.AttachRequest(req))
}

func (n netRuntime) Restore(ctx context.Context, req runtime.RestoreRequest) error {
	return n.Manager.Restore(ctx, network.RestoreRequest(req))
}

func (n netRuntime) Network(ctx context.Context, idOrName string) (runtime.NetworkRef, error) {
	ref, err := n.Manager.Network(ctx, idOrName)
	return runtime.NetworkRef(ref), err
}
