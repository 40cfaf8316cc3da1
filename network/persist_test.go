package network

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

// waitUncommitted waits until n writes are queued in the store.
func (e *env) waitUncommitted(t *testing.T, n int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if got := e.db.Uncommitted(); got >= n {
			return poll.Success()
		}
		return poll.Continue("%d of %d writes queued", e.db.Uncommitted(), n)
	})
}

// TestConcurrentDetachesShareCommits: N containers removed at once (their
// endpoints detached, the sandboxes deleted) cost the store one or two
// transactions, not one fsync each, and no detach waits on a commit under
// the manager's lock: all N return while commits are held.
func TestConcurrentDetachesShareCommits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "many"})
	assert.NilError(t, err)
	const n = 20
	var ctrs []*ctr
	for i := range n {
		c := e.start(t, fmt.Sprintf("c%d", i))
		e.attach(t, c, "many", true)
		ctrs = append(ctrs, c)
	}
	resume := e.db.PauseCommits()
	t.Cleanup(resume)
	before := e.db.Commits()
	var wg sync.WaitGroup
	var done atomic.Int32
	errs := make([]error, n)
	for i, c := range ctrs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.m.DeleteSandbox(ctx, c.id); done.Add(1) }()
	}
	// with commits held: nothing may wait for a commit
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if done.Load() == n {
			return poll.Success()
		}
		return poll.Continue("%d of %d removals returned with commits held", done.Load(), n)
	})
	wg.Wait()
	for _, err := range errs {
		assert.NilError(t, err)
	}
	e.waitUncommitted(t, n) // every record's deletion is queued
	// the lock is free meanwhile: a request is answered
	_, err = e.m.InspectNetwork(ctx, "many")
	assert.NilError(t, err)
	resume()
	e.m.bg.Wait()
	commits := e.db.Commits() - before
	assert.Assert(t, commits <= 2, "%d concurrent detaches took %d commits", n, commits)
	all, _, err := e.m.eps.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 0)
	for _, c := range ctrs {
		_, err := e.m.eps.Get(epKey(c.eps["many"].NetworkID, c.id))
		assert.Check(t, errdefs.IsNotFound(err))
	}
}

// TestDetachPersistsAfterTheVethIsGone checks the persistence rule
// (persist.go): while a detached endpoint's veth exists, its record is in
// the store; the record's deletion is committed only after the veth is
// gone; the address is free for another container only after that.
func TestDetachPersistsAfterTheVethIsGone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "order"})
	assert.NilError(t, err)
	c := e.start(t, "leaver")
	es := e.attach(t, c, "order", true)
	key := epKey(es.NetworkID, c.id)
	e.m.mu.Lock()
	ep := e.m.endpoints[key]
	st := e.m.networks[es.NetworkID]
	e.m.mu.Unlock()

	var vethAtCommit, freeAtCommit []bool
	e.m.afterDelete = func(k string) {
		if k != key {
			return
		}
		_, err := netlink.LinkByName(ep.HostVeth)
		vethAtCommit = append(vethAtCommit, err == nil)
		freeAtCommit = append(freeAtCommit, addrFree(e.m, st, es.IPAddress))
	}
	resume := e.db.PauseCommits()
	t.Cleanup(resume)
	assert.NilError(t, e.m.Detach(ctx, c.id, "order"))
	e.waitUncommitted(t, 1)
	// queued, not committed: the file still has the record (the overlay
	// shows the deletion to readers; Commits did not move)
	_, err = netlink.LinkByName(ep.HostVeth)
	assert.Check(t, err != nil, "the deletion is queued only after the veth is gone")
	assert.Check(t, !addrFree(e.m, st, es.IPAddress), "the address is reserved until the deletion is committed")
	resume()
	e.m.bg.Wait()
	assert.DeepEqual(t, vethAtCommit, []bool{false})
	assert.DeepEqual(t, freeAtCommit, []bool{false})
	assert.Check(t, addrFree(e.m, st, es.IPAddress), "released after the commit")

	// a restarted manager on the same file sees neither record nor address
	assert.NilError(t, e.m.Close())
	e.m = e.manager(t)
	all, _, err := e.m.eps.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 0)
}

// A detach followed at once by an attach of the same container to the same
// network (a restart) keeps the new record: the old one's deletion, which
// waits for the old veth, must not delete it.
func TestReattachKeepsNewRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "again"})
	assert.NilError(t, err)
	c := e.start(t, "bouncer")
	e.attach(t, c, "again", true)
	assert.NilError(t, e.m.Detach(ctx, c.id, "again"))
	es := e.attach(t, c, "again", true)
	e.m.bg.Wait()
	got, err := e.m.eps.Get(epKey(es.NetworkID, c.id))
	assert.NilError(t, err)
	assert.Equal(t, got.ID, es.EndpointID)
	assert.NilError(t, e.m.Close())
	e.m = e.manager(t)
	got, err = e.m.eps.Get(epKey(es.NetworkID, c.id))
	assert.NilError(t, err)
	assert.Equal(t, got.ID, es.EndpointID)
}

// addrFree reports whether ip could be given to a new endpoint.
func addrFree(m *Manager, st *netState, ip netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	got, err := st.sub.Allocate(ip)
	if err != nil {
		return false
	}
	st.sub.Release(got)
	return true
}
