package compose

import (
	"context"

	"github.com/berthd/berth/compose"
)

// Backend is what the deployment routes need (*compose.Manager).
type Backend interface {
	Deploy
	View
	Jobs
}

// Deploy changes deployments.
type Deploy interface {
	// Up deploys a compose project; ErrInvalidArgument for a bad file,
	// ErrNotFound for a missing image or external network, or (FromRecord)
	// an unknown project.
	Up(ctx context.Context, req compose.UpRequest) (*compose.UpResult, error)
	// Down removes a project's containers, networks and, when asked, volumes.
	Down(ctx context.Context, req compose.DownRequest) (*compose.UpResult, error)
	// Scale sets and converges services' replica counts; ErrNotFound for
	// an unknown project or service, ErrInvalidArgument for a negative count.
	Scale(ctx context.Context, project string, req compose.ScaleRequest) (*compose.UpResult, error)
	// Pull pulls the project's images by pull_policy; the result names the
	// services whose image moved.
	Pull(ctx context.Context, req compose.UpRequest) (*compose.PullResult, error)
}

// View shows deployments.
type View interface {
	// Ps is the deployment view of one project, or all when project is "".
	Ps(ctx context.Context, project string) ([]compose.Deployment, error)
	Deployments(ctx context.Context) ([]compose.DeploymentStatus, error)
	// Deployment returns ErrNotFound for an unknown project.
	Deployment(ctx context.Context, project string) (*compose.DeploymentStatus, error)
	// Logs merges a project's logs; ErrNotFound for an unknown project or
	// service.
	Logs(ctx context.Context, project string, req compose.LogsRequest) (<-chan compose.LogEntry, error)
}

// Jobs runs jobs.
type Jobs interface {
	RunJob(ctx context.Context, project, service string) (*compose.JobExecution, error)
	Jobs(ctx context.Context, project, service string) ([]*compose.JobExecution, error)
	CancelJob(ctx context.Context, project, id string) (*compose.JobExecution, error)
}

var _ Backend = (*compose.Manager)(nil)
