package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

// Readers answer while an operation holds the container (a start holds it
// through mounts, copy-up, network attach and the runtime): they read the
// published view, never the operation's lock.
func TestReadersDoNotWaitForOperations(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	_, err := h.s.Create(ctx, CreateRequest{Name: "web", Config: &container.Config{Image: "busybox", Labels: map[string]string{"a": "1"}}})
	assert.NilError(t, err)
	c, err := h.s.lookup("web")
	assert.NilError(t, err)

	c.mu.Lock() // an operation in progress
	readers := map[string]func() error{
		"list": func() error {
			l, err := h.s.List(ctx, ListOptions{All: true})
			if err == nil && len(l) != 1 {
				t.Errorf("list: %d containers", len(l))
			}
			return err
		},
		"inspect by name": func() error { _, err := h.s.Inspect(ctx, "web", false); return err },
		"inspect by id prefix": func() error {
			_, err := h.s.Inspect(ctx, c.snapshot().ID[:6], false)
			return err
		},
		"unknown name (asks the fallback)": func() error {
			_, err := h.s.Inspect(ctx, "nosuch", false)
			if !errdefs.IsNotFound(err) {
				t.Errorf("unknown name: %v", err)
			}
			return nil
		},
		"counts": func() error { h.s.Counts(); return nil },
		"before filter": func() error {
			_, err := h.s.List(ctx, ListOptions{All: true, Filters: filters.New([2]string{"before", "web"})})
			return err
		},
	}
	for name, read := range readers {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			assert.NilError(t, err, name)
		case <-time.After(10 * time.Second):
			c.mu.Unlock()
			t.Fatalf("%s waited for the container's operation", name)
		}
	}
	// what the operation changes is seen once it publishes it, not before
	c.rec.Config.Labels["a"] = "2"
	ins, err := h.s.Inspect(ctx, "web", false)
	assert.NilError(t, err)
	assert.Equal(t, ins.Config.Labels["a"], "1")
	c.notify()
	c.mu.Unlock()
	ins, err = h.s.Inspect(ctx, "web", false)
	assert.NilError(t, err)
	assert.Equal(t, ins.Config.Labels["a"], "2")

	// what a reader does to its answer stays out of the view
	ins.Config.Labels["a"] = "changed by a caller"
	ins.HostConfig.Binds = append(ins.HostConfig.Binds, "/x:/y")
	l, err := h.s.List(ctx, ListOptions{All: true})
	assert.NilError(t, err)
	l[0].Labels["a"] = "changed by a caller"
	ins, err = h.s.Inspect(ctx, "web", false)
	assert.NilError(t, err)
	assert.Equal(t, ins.Config.Labels["a"], "2")
	assert.Equal(t, len(ins.HostConfig.Binds), 0)
	l, err = h.s.List(ctx, ListOptions{All: true})
	assert.NilError(t, err)
	assert.Equal(t, l[0].Labels["a"], "2")
}
