package network

import (
	"context"

	"github.com/moby/moby/api/types/network"
)

// BuildSandboxes gives BuildKit's RUN steps (buildkit.Sandboxes) network
// namespaces on the default bridge, made and removed like a container's:
// a step reaches what a container on the bridge reaches.
type BuildSandboxes struct{ m sandboxes }

// sandboxes is the part of *Manager a build step's namespace needs.
type sandboxes interface {
	CreateSandbox(ctx context.Context, containerID string) (string, error)
	Attach(ctx context.Context, nsPath string, req AttachRequest) (*network.EndpointSettings, error)
	DeleteSandbox(ctx context.Context, containerID string) error
}

// BuildSandboxes returns the manager's sandboxes for build steps.
func (m *Manager) BuildSandboxes() BuildSandboxes { return BuildSandboxes{m: m} }

// Join creates the namespace of step id, attached to the default bridge
// with hostname, and returns its path. When the attach fails the
// namespace is removed again: nothing is left for Leave.
func (b BuildSandboxes) Join(ctx context.Context, id, hostname string) (string, error) {
	path, err := b.m.CreateSandbox(ctx, id)
	if err != nil {
		return "", err
	}
	if _, err := b.m.Attach(ctx, path, AttachRequest{ContainerID: id, ContainerName: id, Hostname: hostname, Network: "bridge", Primary: true}); err != nil {
		_ = b.m.DeleteSandbox(ctx, id)
		return "", err
	}
	return path, nil
}

// Leave detaches step id's namespace and removes it (DeleteSandbox).
func (b BuildSandboxes) Leave(ctx context.Context, id string) error {
	return b.m.DeleteSandbox(ctx, id)
}
