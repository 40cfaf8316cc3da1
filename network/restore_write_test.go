package network

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"

	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
)

// A restore that finds the stored endpoint as the container describes it
// writes nothing: at a daemon start with hundreds of containers a store
// write per endpoint was most of the restore. One that differs (a rename
// while the daemon was down) is still written.
func TestRestoreWritesOnlyChangedEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "n"})
	assert.NilError(t, err)
	a, b := e.start(t, "a"), e.start(t, "b")
	e.attach(t, a, "n", true)
	e.attach(t, b, "n", true)
	assert.NilError(t, e.m.Close())
	e.m = e.manager(t)
	defer func() {
		for _, c := range []*ctr{a, b} {
			assert.NilError(t, e.m.DeleteSandbox(ctx, c.id))
		}
	}()

	sum := func() [32]byte {
		b, err := os.ReadFile(e.dbPath)
		assert.NilError(t, err)
		return sha256.Sum256(b)
	}
	before := sum()
	for range 2 { // the second time finds the endpoint live
		assert.NilError(t, e.m.Restore(ctx, RestoreRequest{ContainerID: a.id, ContainerName: a.name, Hostname: a.id[:12], NSPath: a.ns, Endpoints: a.eps}))
	}
	assert.Check(t, before == sum(), "restoring an unchanged endpoint wrote the store")

	assert.NilError(t, e.m.Restore(ctx, RestoreRequest{ContainerID: b.id, ContainerName: "b-renamed", Hostname: b.id[:12], NSPath: b.ns, Endpoints: b.eps}))
	assert.Check(t, before != sum(), "a changed endpoint was not written")
	assert.NilError(t, e.m.RestoreDone(ctx))
	in, err := e.m.InspectNetwork(ctx, "n")
	assert.NilError(t, err)
	assert.Check(t, len(in.Containers) == 2)
	for _, c := range in.Containers {
		if c.EndpointID == b.eps["n"].EndpointID {
			assert.Check(t, c.Name == "b-renamed")
		}
	}
}

// RestoreDone releases every endpoint nobody restored in one commit, not
// one fsync each (at a daemon start after a crash with many dead
// containers, one fsync per record was seconds under the manager's lock);
// and the store holds none of them after.
func TestRestoreDoneDeletesDeadEndpointsTogether(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "n"})
	assert.NilError(t, err)
	const n = 12
	for i := range n {
		e.attach(t, e.start(t, fmt.Sprintf("dead%d", i)), "n", true)
	}
	assert.NilError(t, e.m.Close())
	e.m = e.manager(t)
	before := e.db.Commits()
	// with commits held, every deletion is queued before any is waited for
	resume := e.db.PauseCommits()
	t.Cleanup(resume)
	done := make(chan error, 1)
	go func() { done <- e.m.RestoreDone(ctx) }()
	e.waitUncommitted(t, n)
	resume()
	assert.NilError(t, <-done)
	commits := e.db.Commits() - before
	assert.Check(t, commits <= 2, "releasing %d dead endpoints took %d commits", n, commits)
	all, _, err := e.m.eps.List()
	assert.NilError(t, err)
	assert.Check(t, len(all) == 0, "%d endpoint records left", len(all))
	in, err := e.m.InspectNetwork(ctx, "n")
	assert.NilError(t, err)
	assert.Check(t, len(in.Containers) == 0)
}
