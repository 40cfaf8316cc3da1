package runtime

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// countActions counts one container's events of an action.
func countActions(h *harness, id, action string) int {
	n := 0
	for _, a := range h.ev.actions(id) {
		if a == action {
			n++
		}
	}
	return n
}

// The removal of a container has one owner, whoever claims it first: a
// docker rm -f of a running --rm container causes an exit whose
// auto-remove must not remove it a second time (which closed a closed
// channel and killed the daemon), and the reverse.
func TestRemoveForceRacesAutoRemove(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var ids []string
	for range 30 {
		id := create(t, h, "", &container.HostConfig{AutoRemove: true}, "sleep", "30")
		ids = append(ids, id)
		assert.NilError(t, h.s.Start(ctx, id))
		assert.NilError(t, h.s.Remove(ctx, id, RemoveOptions{Force: true}))
		_, err := h.s.Inspect(ctx, id, false)
		assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	}
	// the container exits on its own while rm -f runs: either may win,
	// the loser gets dockerd's answer
	for range 30 {
		id := create(t, h, "", &container.HostConfig{AutoRemove: true}, "true")
		ids = append(ids, id)
		assert.NilError(t, h.s.Start(ctx, id))
		err := h.s.Remove(ctx, id, RemoveOptions{Force: true})
		assert.Check(t, err == nil || errdefs.IsNotFound(err) || errdefs.IsConflict(err), "%v", err)
		if errdefs.IsConflict(err) {
			assert.Check(t, is.ErrorContains(err, "is already in progress"))
		}
	}
	// two clients remove at once
	for range 10 {
		id := create(t, h, "", nil, "sleep", "30")
		ids = append(ids, id)
		assert.NilError(t, h.s.Start(ctx, id))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = h.s.Remove(ctx, id, RemoveOptions{Force: true})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				assert.Check(t, errdefs.IsConflict(err) || errdefs.IsNotFound(err), "%v", err)
			}
		}
		assert.Check(t, is.Equal(ok, 1), "%v", errs)
	}
	// every exit handler has finished: none removed anything twice
	assert.NilError(t, h.s.Close())
	for _, id := range ids {
		assert.Check(t, is.Equal(countActions(h, id, "destroy"), 1), "container %s", id[:12])
		assert.Check(t, !h.s.Exists(id))
	}
	assert.Check(t, is.Len(h.imgs.rootfs, 0))
	assert.Check(t, is.Len(h.imgs.mounted, 0))
	assert.Check(t, is.Len(h.nets.sandboxes, 0))
}

// A panic in background work is logged, and the daemon lives on.
func TestBackgroundPanicIsRecovered(t *testing.T) {
	h := newHarness(t)
	done := make(chan struct{})
	h.s.bgGo(func() {
		defer close(done)
		var m map[string]int
		m["boom"]++ // a nil map write panics
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("background work did not end")
	}
	assert.NilError(t, h.s.Close())
}

// Wait on a container whose restart policy brings it back answers at its
// next exit, as dockerd's (a restarting container counts as running).
func TestWaitOnRestartingContainer(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "", &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}, "sh", "-c", "sleep 0.2; exit 3")
	assert.NilError(t, h.s.Start(ctx, id))
	for _, cond := range []container.WaitCondition{"", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionNotRunning} {
		ch, err := h.s.Wait(ctx, id, cond)
		assert.NilError(t, err)
		select {
		case r := <-ch:
			assert.NilError(t, r.Err)
			assert.Equal(t, r.ExitCode, 3, "condition %q", cond)
		case <-time.After(20 * time.Second):
			t.Fatalf("wait %q on a container that keeps restarting did not return", cond)
		}
	}
	removed, err := h.s.Wait(ctx, id, container.WaitConditionRemoved)
	assert.NilError(t, err)
	select {
	case <-removed:
		t.Fatal("removed answered before the removal")
	default:
	}
	assert.NilError(t, h.s.Remove(ctx, id, RemoveOptions{Force: true}))
	select {
	case r := <-removed:
		assert.NilError(t, r.Err)
	case <-time.After(10 * time.Second):
		t.Fatal("wait removed did not return after the removal")
	}
}

// docker restart of a --rm container restarts it (its exit does not
// remove it), and a restart whose client went away completes.
func TestRestartAutoRemoveAndCancelled(t *testing.T) {
	h := newHarness(t)
	id := create(t, h, "", &container.HostConfig{AutoRemove: true}, "sleep", "30")
	assert.NilError(t, h.s.Start(context.Background(), id))
	zero := 0
	for range 2 {
		assert.NilError(t, h.s.Restart(context.Background(), id, "", &zero))
		ins, err := h.s.Inspect(context.Background(), id, false)
		assert.NilError(t, err)
		assert.Equal(t, ins.State.Status, container.StateRunning)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NilError(t, h.s.Restart(cancelled, id, "", &zero))
	ins, err := h.s.Inspect(context.Background(), id, false)
	assert.NilError(t, err)
	assert.Equal(t, ins.State.Status, container.StateRunning)
	assert.Equal(t, countActions(h, id, "restart"), 3)
	assert.Equal(t, countActions(h, id, "destroy"), 0)

	// still auto-remove: a stop removes it
	removed, err := h.s.Wait(context.Background(), id, container.WaitConditionRemoved)
	assert.NilError(t, err)
	assert.NilError(t, h.s.Stop(context.Background(), id, "", &zero))
	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatal("a stopped --rm container was not removed")
	}
}

// A panic in a start step fails that start, undoes what it did and leaves
// the container unlocked: it can be listed, removed, and started again.
func TestStartPanicReleasesTheContainer(t *testing.T) {
	h := newHarness(t)
	id := create(t, h, "boom", nil, "sleep", "100")
	h.nets.panics = true
	for i := 0; i < 2; i++ {
		err := h.s.Start(context.Background(), id)
		assert.Check(t, is.ErrorContains(err, "internal error starting container"))
	}
	h.imgs.mu.Lock()
	assert.Check(t, is.Len(h.imgs.mounted, 0), "the start's root filesystem mount was undone")
	h.imgs.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- h.s.Remove(context.Background(), id, RemoveOptions{Force: true}) }()
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the container stayed locked after the panic")
	}
}
