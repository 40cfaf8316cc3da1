// Package memrelease gives a daemon's start-up garbage back to the kernel.
package memrelease

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"
)

// Settle is how long after the API is up the start-up garbage is given
// back: package init, the image store's and BuildKit's set-up and the
// restore of running containers allocate several MB that an idle daemon
// never uses again, and the Go scavenger returns free heap to the kernel
// only slowly, so without this an idle berthd keeps it resident for
// minutes.
const Settle = 2 * time.Second

// AfterStartup collects once and releases the free heap to the kernel
// when after has passed, unless ctx ends first.
func AfterStartup(ctx context.Context, after time.Duration) {
	afterStartup(ctx, after, func() {
		baseline.Store(int64(threadCount()))
		debug.FreeOSMemory()
		logrus.Debugf("start-up garbage returned: %s", Breakdown())
	})
}

func afterStartup(ctx context.Context, after time.Duration, free func()) {
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		free()
	}
}
