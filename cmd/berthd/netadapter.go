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

// buildSandboxes gives BuildKit's RUN steps namespaces on the default
// bridge, made and removed like a container's.
type buildSandboxes struct{ *network.Manager }

func (b buildSandboxes) Join(ctx context.Context, id, hostname string) (string, error) {
	path, err := b.CreateSandbox(ctx, id)
	if err != nil {
		return "", err
	}
	if _, err := b.Attach(ctx, path, network.AttachRequest{ContainerID: id, ContainerName: id, Hostname: hostname, Network: "bridge", Primary: true}); err != nil {
		_ = b.DeleteSandbox(ctx, id)
		return "", err
	}
	return path, nil
}

func (b buildSandboxes) Leave(ctx context.Context, id string) error {
	return b.DeleteSandbox(ctx, id)
}
