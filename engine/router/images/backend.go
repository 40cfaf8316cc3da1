package images

import (
	"context"
	"io"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/registry"
	"github.com/moby/moby/api/types/image"
	mregistry "github.com/moby/moby/api/types/registry"
)

// Lister answers the read-only image endpoints. Unknown images are
// ErrNotFound ("No such image: x"); malformed filters ErrInvalidArgument.
type Lister interface {
	Images(ctx context.Context, opts registry.ListOptions) ([]image.Summary, error)
	Inspect(ctx context.Context, ref string) (*image.InspectResponse, error)
	// Parent is the ID of the image ref was committed from ("" if none).
	Parent(ctx context.Context, ref string) (string, error)
	History(ctx context.Context, ref string) ([]image.HistoryResponseItem, error)
}

// Namer changes names and removes images. Conflicts (a container uses the
// image, names in several repositories) are ErrConflict.
type Namer interface {
	Tag(ctx context.Context, ref, repo, tag string) error
	Delete(ctx context.Context, ref string, force, prune bool) ([]image.DeleteResponse, error)
	Prune(ctx context.Context, f filters.Args) (*image.PruneReport, error)
}

// Transferer moves images in and out: registries and archives. Each calls
// start once its input has been checked; errors returned before that get a
// status code, errors after it go into the stream.
type Transferer interface {
	Pull(ctx context.Context, opts registry.PullOptions, start registry.StartFunc) error
	Push(ctx context.Context, opts registry.PushOptions, start registry.StartFunc) error
	Load(ctx context.Context, r io.Reader, quiet bool, start registry.StartFunc) error
	Import(ctx context.Context, r io.Reader, opts registry.ImportOptions, start registry.StartFunc) error
	Save(ctx context.Context, names []string, start func() io.Writer) error
	Login(ctx context.Context, auth mregistry.AuthConfig) (*mregistry.AuthResponse, error)
	// DistributionInspect asks the registry what a reference points to.
	DistributionInspect(ctx context.Context, ref string, auth *mregistry.AuthConfig) (*mregistry.DistributionInspect, error)
}

// Backend is everything the image routes need.
type Backend interface {
	Lister
	Namer
	Transferer
}
