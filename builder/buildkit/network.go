package buildkit

import (
	"context"
	"fmt"

	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berth/builder/buildkit/wire"
)

// Sandboxes makes the network namespaces RUN steps run in (berth's network
// manager's network.BuildSandboxes).
type Sandboxes = wire.Sandboxes

// bridge gives each RUN step its own namespace on berth's default bridge,
// as dockerd's build network does: the step reaches what a container on
// the bridge reaches, under berth's DNS server.
type bridge struct {
	sandboxes Sandboxes
}

var _ network.Provider = bridge{}

func (b bridge) New(ctx context.Context, hostname string, _ network.NamespaceOptions) (network.Namespace, error) {
	id := "buildkit-" + identity.NewID()
	path, err := b.sandboxes.Join(ctx, id, hostname)
	if err != nil {
		return nil, fmt.Errorf("network for build step: %w", err)
	}
	return &bridgeNS{sandboxes: b.sandboxes, id: id, path: path}, nil
}

func (b bridge) Close() error { return nil }

type bridgeNS struct {
	sandboxes Sandboxes
	id, path  string
}

// Set points the step's network namespace at the sandbox.
func (n *bridgeNS) Set(s *specs.Spec) error {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = n.path
			return nil
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: n.path})
	return nil
}

// Close releases the step's address, veth and namespace. BuildKit calls it
// when the step ends, also when it failed or was cancelled.
func (n *bridgeNS) Close() error {
	return n.sandboxes.Leave(context.Background(), n.id)
}

func (n *bridgeNS) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }
