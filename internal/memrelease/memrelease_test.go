package memrelease

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestAfterStartupFreesOnce(t *testing.T) {
	n := 0
	afterStartup(context.Background(), time.Millisecond, func() { n++ })
	assert.Equal(t, n, 1)
}

func TestAfterStartupNotAfterShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	afterStartup(ctx, time.Hour, func() { n++ })
	assert.Equal(t, n, 0)
}
