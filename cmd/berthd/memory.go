package main

import (
	"context"
	"runtime/debug"
	"time"
)

// startupSettle is how long after the API is up the start-up garbage is
// given back: package init, the image store's and BuildKit's set-up and the
// restore of running containers allocate several MB that an idle daemon
// never uses again, and the Go scavenger returns free heap to the kernel
// only slowly, so without this an idle berthd keeps it resident for
// minutes.
const startupSettle = 2 * time.Second

// returnStartupMemory collects once and releases the free heap to the
// kernel after the start-up burst.
func returnStartupMemory(ctx context.Context, after time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(after):
		debug.FreeOSMemory()
	}
}
