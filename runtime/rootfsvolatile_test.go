package runtime

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A --rm container's root filesystem is made volatile (no sync when it is
// unmounted: registry/rootfs.go); every other container's is durable.
func TestAutoRemoveRootfsIsVolatile(t *testing.T) {
	h := newHarness(t)
	rm := create(t, h, "", &container.HostConfig{AutoRemove: true}, "true")
	keep := create(t, h, "", nil, "true")
	h.imgs.mu.Lock()
	defer h.imgs.mu.Unlock()
	assert.Check(t, is.Equal(h.imgs.opts[rm], RootfsOptions{Volatile: true}))
	assert.Check(t, is.Equal(h.imgs.opts[keep], RootfsOptions{}))
}
