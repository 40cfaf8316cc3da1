package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"github.com/moby/moby/api/types/image"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A root filesystem whose removal was begun (a --rm container answered
// removed) makes no user of its image: rmi and the container counts wait
// for the removal instead of seeing a container nobody lists.
func TestBegunRemovalIsNoUser(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	img := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	cid := strings.Repeat("a7", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid, img, imagefs.RootfsOptions{Volatile: true}))
	_, err := s.MountRootfs(ctx, cid)
	assert.NilError(t, err)
	assert.NilError(t, s.UnmountRootfs(ctx, cid)) // as the container's teardown

	remove := s.BeginRemoveRootfs(cid)
	waits := make(chan int, 4)
	s.removals.mu.Lock()
	s.removals.waiting = func(n int) { waits <- n }
	s.removals.mu.Unlock()

	type result struct {
		recs []image.DeleteResponse
		err  error
	}
	deleted := make(chan result, 1)
	go func() {
		recs, err := s.Delete(ctx, "busybox", false, true)
		deleted <- result{recs, err}
	}()
	select {
	case n := <-waits:
		assert.Check(t, is.Equal(n, 1), "rmi waits for other removals than the begun one")
	case r := <-deleted:
		t.Fatalf("rmi answered without waiting for the begun removal: %v", r.err)
	}
	select {
	case r := <-deleted:
		t.Fatalf("rmi answered before the removal ended: %v", r.err)
	default:
	}
	assert.NilError(t, remove(ctx))
	r := <-deleted
	assert.NilError(t, r.err, "the removed container still counts as a user")
	assert.Assert(t, len(r.recs) > 1)
	assert.Check(t, is.Equal(r.recs[0].Untagged, "busybox:latest"))
	n, err := s.CountImages(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, 0))

	// nothing pending: the next wait waits for nothing
	_, err = s.Images(ctx, ListOptions{ContainerCount: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(<-waits, 0))
	st, err := s.Rootfses(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(st, 0))
}
