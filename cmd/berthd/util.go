package main

import (
	"context"
	"os/exec"
	"time"

	"github.com/containerd/errdefs"
	networktypes "github.com/moby/moby/api/types/network"
)

func execOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}

// Until the runtime and image subsystems are wired in, nothing is counted.
type noContainers struct{}

func (noContainers) Counts() (int, int, int, int) { return 0, 0, 0, 0 }

// Until the runtime is wired in, no container exists to connect.
type noContainerNetworker struct{}

func (noContainerNetworker) ConnectContainer(ctx context.Context, network, container string, cfg *networktypes.EndpointSettings) error {
	return errdefs.ErrNotFound.WithMessage("No such container: " + container)
}

func (noContainerNetworker) DisconnectContainer(ctx context.Context, network, container string, force bool) error {
	return errdefs.ErrNotFound.WithMessage("No such container: " + container)
}
