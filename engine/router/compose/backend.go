package compose

import (
	"context"

	"github.com/berthd/berth/compose"
)

// Backend is what the deployment routes need (*compose.Deployer).
type Backend interface {
	// Up deploys a compose project; ErrInvalidArgument for a bad file,
	// ErrNotFound for a missing image or external network.
	Up(ctx context.Context, req compose.UpRequest) (*compose.UpResult, error)
	// Down removes a project's containers, networks and, when asked, volumes.
	Down(ctx context.Context, req compose.DownRequest) (*compose.UpResult, error)
	// Ps is the deployment view of one project, or all when project is "".
	Ps(ctx context.Context, project string) ([]compose.Deployment, error)
}

var _ Backend = (*compose.Deployer)(nil)
