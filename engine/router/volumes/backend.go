// Package volumes routes the volume endpoints of the Engine API:
// /volumes, /volumes/create, /volumes/{name}, /volumes/prune.
package volumes

import (
	"context"

	"github.com/berthd/berth/internal/filters"
	"github.com/moby/moby/api/types/volume"
)

// Backend is what the volume handlers need (volume.Service).
type Backend interface {
	// Create creates a volume or returns the existing one of that name;
	// ErrInvalidArgument for bad names or options, ErrNotFound for an
	// unknown driver.
	Create(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	// Get returns a volume; ErrNotFound "get <name>: no such volume".
	Get(ctx context.Context, name string) (*volume.Volume, error)
	// List returns the volumes matching the filters, and warnings;
	// ErrInvalidArgument for bad filters.
	List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error)
	// Remove deletes an unused volume; ErrConflict while in use, ErrNotFound
	// when missing unless force.
	Remove(ctx context.Context, name string, force bool) error
	// Prune removes unused volumes matching the filters.
	Prune(ctx context.Context, f filters.Args) (*volume.PruneReport, error)
}
