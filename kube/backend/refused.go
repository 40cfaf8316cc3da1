package backend

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
)

// The container endpoints this backend does not serve (yet, or ever: a pod
// cannot be paused, committed or exported). Each answers 501 in Docker's
// words; see docs/kubernetes.md for the table.

func (b *Backend) Restart(ctx context.Context, ref, signal string, timeout *int) error {
	return notImplemented("restart")
}
func (b *Backend) Pause(ctx context.Context, ref string) error   { return notImplemented("pause") }
func (b *Backend) Unpause(ctx context.Context, ref string) error { return notImplemented("unpause") }
func (b *Backend) RemoveLink(ctx context.Context, ref string) error {
	return notImplemented("links (rm --link)")
}
func (b *Backend) Prune(ctx context.Context, f filters.Args) (*container.PruneReport, error) {
	return nil, notImplemented("container prune")
}
func (b *Backend) Update(ctx context.Context, ref string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	return container.UpdateResponse{}, notImplemented("update")
}
func (b *Backend) Commit(ctx context.Context, ref string, opts runtime.CommitOptions) (string, error) {
	return "", notImplemented("commit")
}
func (b *Backend) StatPath(ctx context.Context, ref, path string) (*container.PathStat, error) {
	return nil, notImplemented("copying files (docker cp)")
}
func (b *Backend) ArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, *container.PathStat, error) {
	return nil, nil, notImplemented("copying files (docker cp)")
}
func (b *Backend) ExtractToDir(ctx context.Context, ref, path string, opts runtime.ExtractOptions, content io.Reader) error {
	return notImplemented("copying files (docker cp)")
}
func (b *Backend) Export(ctx context.Context, ref string) (io.ReadCloser, error) {
	return nil, notImplemented("export")
}
func (b *Backend) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	return nil, notImplemented("diff")
}
func (b *Backend) Top(ctx context.Context, ref, psArgs string) (*container.TopResponse, error) {
	return nil, notImplemented("top")
}
func (b *Backend) Stats(ctx context.Context, ref string, opts runtime.StatsOptions, send func(*container.StatsResponse) error) error {
	return notImplemented("stats")
}

// Deployments serves berth's deployment endpoints (engine/router/compose)
// from the cluster: up, down and scale; the rest answers 501.
type Deployments struct{ b *Backend }

// Deployments returns the deployment side of the backend (its Logs would
// clash with the container Logs on one type).
func (b *Backend) Deployments() *Deployments { return &Deployments{b: b} }

func (d *Deployments) Up(ctx context.Context, req compose.UpRequest) (*compose.UpResult, error) {
	return d.b.Up(ctx, req)
}
func (d *Deployments) Down(ctx context.Context, req compose.DownRequest) (*compose.UpResult, error) {
	return d.b.Down(ctx, req)
}
func (d *Deployments) Scale(ctx context.Context, project string, req compose.ScaleRequest) (*compose.UpResult, error) {
	return d.b.Scale(ctx, project, req)
}
func (d *Deployments) Pull(ctx context.Context, req compose.UpRequest) (*compose.PullResult, error) {
	return nil, notImplemented("pull (the nodes pull images)")
}
func (d *Deployments) RunJob(ctx context.Context, project, service string) (*compose.JobExecution, error) {
	return nil, notImplemented("jobs")
}
func (d *Deployments) Jobs(ctx context.Context, project, service string) ([]*compose.JobExecution, error) {
	return nil, notImplemented("jobs")
}
func (d *Deployments) CancelJob(ctx context.Context, project, id string) (*compose.JobExecution, error) {
	return nil, notImplemented("jobs")
}
