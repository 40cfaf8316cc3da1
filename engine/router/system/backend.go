// Package system routes the daemon-wide endpoints: _ping, version, info,
// events and system/df.
package system

import (
	"context"
	"time"

	"github.com/berthd/berth/sysinfo"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
)

// InfoBackend answers /info and /version.
type InfoBackend interface {
	// Info gathers the daemon's figures; it fails only when a subsystem does.
	Info(ctx context.Context) (*system.Info, error)
	Version(ctx context.Context) system.VersionResponse
}

// EventsBackend is the event bus.
type EventsBackend interface {
	// Subscribe returns remembered events since the given time (none when
	// zero), a channel of live events and a function ending the subscription.
	Subscribe(since time.Time) ([]events.Message, <-chan events.Message, func())
}

// DiskUsageBackend answers /system/df.
type DiskUsageBackend interface {
	// DiskUsage reports the kinds asked for (all when none is).
	DiskUsage(ctx context.Context, kinds sysinfo.Kinds) (*system.DiskUsage, error)
}
