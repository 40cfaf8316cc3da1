package compose

import (
	"context"

	"github.com/berthd/berth/compose"
	"github.com/containerd/errdefs"
)

// unimplemented is a Backend whose methods fail; fakes embed it and
// override what they serve.
type unimplemented struct{}

var errUnimplemented = errdefs.ErrNotImplemented.WithMessage("not in this fake")

func (unimplemented) Up(context.Context, compose.UpRequest) (*compose.UpResult, error) {
	return nil, errUnimplemented
}
func (unimplemented) Down(context.Context, compose.DownRequest) (*compose.UpResult, error) {
	return nil, errUnimplemented
}
func (unimplemented) Scale(context.Context, string, compose.ScaleRequest) (*compose.UpResult, error) {
	return nil, errUnimplemented
}
func (unimplemented) Pull(context.Context, compose.UpRequest) (*compose.PullResult, error) {
	return nil, errUnimplemented
}
func (unimplemented) Ps(context.Context, string) ([]compose.Deployment, error) {
	return nil, errUnimplemented
}
func (unimplemented) Deployments(context.Context) ([]compose.DeploymentStatus, error) {
	return nil, errUnimplemented
}
func (unimplemented) Deployment(context.Context, string) (*compose.DeploymentStatus, error) {
	return nil, errUnimplemented
}
func (unimplemented) Logs(context.Context, string, compose.LogsRequest) (<-chan compose.LogEntry, error) {
	return nil, errUnimplemented
}
func (unimplemented) RunJob(context.Context, string, string) (*compose.JobExecution, error) {
	return nil, errUnimplemented
}
func (unimplemented) Jobs(context.Context, string, string) ([]*compose.JobExecution, error) {
	return nil, errUnimplemented
}
func (unimplemented) CancelJob(context.Context, string, string) (*compose.JobExecution, error) {
	return nil, errUnimplemented
}
