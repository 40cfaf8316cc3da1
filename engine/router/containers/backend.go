// Package containers routes the container endpoints of the Engine API.
package containers

import (
	"context"
	"io"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/moby/moby/api/types/container"
)

// stateBackend changes a container's lifecycle state.
type stateBackend interface {
	Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error)
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name, signal string, timeout *int) error
	Restart(ctx context.Context, name, signal string, timeout *int) error
	Kill(ctx context.Context, name, signal string) error
	Pause(ctx context.Context, name string) error
	Unpause(ctx context.Context, name string) error
	Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan runtime.WaitResult, error)
	Remove(ctx context.Context, name string, opts runtime.RemoveOptions) error
	// RemoveLink removes the legacy link "<parent>/<alias>" (rm --link).
	RemoveLink(ctx context.Context, name string) error
	Rename(ctx context.Context, oldName, newName string) error
	Prune(ctx context.Context, f filters.Args) (*container.PruneReport, error)
	Update(ctx context.Context, name string, cfg container.UpdateConfig) (container.UpdateResponse, error)
	Commit(ctx context.Context, name string, opts runtime.CommitOptions) (string, error)
}

// queryBackend reads containers.
type queryBackend interface {
	List(ctx context.Context, opts runtime.ListOptions) ([]container.Summary, error)
	Inspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	Logs(ctx context.Context, name string, opts runtime.LogsOptions) (*runtime.LogStream, error)
}

// streamBackend attaches to containers and runs processes in them.
type streamBackend interface {
	Resize(ctx context.Context, name string, height, width uint) error
	ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
}

// archiveBackend copies files in and out of containers (docker cp,
// export, diff).
type archiveBackend interface {
	StatPath(ctx context.Context, name, path string) (*container.PathStat, error)
	ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error)
	ExtractToDir(ctx context.Context, name, path string, opts runtime.ExtractOptions, content io.Reader) error
	Export(ctx context.Context, name string) (io.ReadCloser, error)
	Changes(ctx context.Context, name string) ([]container.FilesystemChange, error)
}

// monitorBackend reports a running container's processes and resources.
type monitorBackend interface {
	Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error)
	Stats(ctx context.Context, name string, opts runtime.StatsOptions, send func(*container.StatsResponse) error) error
}

// backend is everything the container routes need but the start of an exec
// and attach.
type backend interface {
	stateBackend
	queryBackend
	streamBackend
	archiveBackend
	monitorBackend
}

// Backend is everything the container routes need. X is what the backend's
// ExecStart answers (the local runtime's *runtime.ExecRun, the Kubernetes
// backend's remotecommand exec): the router streams it as an ExecStream. A
// is what its Attach answers (*runtime.Attachment, the Kubernetes
// backend's pods/attach), streamed as an AttachStream.
type Backend[X ExecStream, A AttachStream] interface {
	backend
	ExecStart(ctx context.Context, execID string, req container.ExecStartRequest) (X, error)
	Attach(ctx context.Context, name string, opts runtime.AttachOptions) (A, error)
}

// AttachStream is an accepted attach as the router streams it. How it is
// framed (raw for a terminal, else multiplexed) is its TTY method's answer,
// or the Tty field of the local runtime's *runtime.Attachment.
type AttachStream interface {
	// Run streams until the container's process ends, the client goes
	// away or detaches (ErrDetached); ready is called once the attachment
	// is in place, before the answer goes out.
	Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, ready func()) error
	// Cancel gives up an attachment that was not run.
	Cancel()
}

// attachTTY says how an attachment is framed.
func attachTTY(a AttachStream) bool {
	switch a := a.(type) {
	case *runtime.Attachment:
		return a.Tty
	case interface{ TTY() bool }:
		return a.TTY()
	}
	return false
}

var _ AttachStream = (*runtime.Attachment)(nil)

// ExecStream is a started exec as the router streams it.
type ExecStream interface {
	// TTY says how the stream is framed: raw (a terminal) or multiplexed.
	TTY() bool
	// Run streams the process until it ends; with nil streams (a detached
	// exec) it returns once the process started. ErrDetached: the client
	// detached with its detach keys.
	Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error
	// Cancel gives up an exec that was not run.
	Cancel()
}

// the local runtime's exec streams as it did
var _ ExecStream = (*runtime.ExecRun)(nil)
