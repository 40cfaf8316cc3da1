package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

func openTable(t testing.TB) (*DB, *Table[rec]) {
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	assert.NilError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	tb, err := NewTable[rec](db, "things")
	assert.NilError(t, err)
	return db, tb
}

func (db *DB) queueLen() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.queue)
}

// N writers that arrive while a commit is under way share the next one:
// two transactions (two fsyncs) for N deletions, not N.
func TestConcurrentWritesShareOneCommit(t *testing.T) {
	db, tb := openTable(t)
	const n = 40
	for i := range n {
		assert.NilError(t, tb.Put(fmt.Sprint(i), &rec{"x", i}))
	}
	gate := make(chan struct{})
	var sizes []int
	var held atomic.Int64              // writes in the commit held at the gate
	db.beforeCommit = func(size int) { // the commit loop is one goroutine at a time
		sizes = append(sizes, size)
		if len(sizes) == 1 {
			held.Store(int64(size))
			<-gate
		}
	}
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	before := db.Commits()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = tb.Delete(fmt.Sprint(i)) }()
	}
	// one is being committed (held at the gate), the others queue behind it
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if h := held.Load(); h > 0 && int(h)+db.queueLen() == n {
			return poll.Success()
		}
		return poll.Continue("%d queued", db.queueLen())
	})
	release()
	wg.Wait()
	for _, err := range errs {
		assert.NilError(t, err)
	}
	// the held commit took what had queued when the loop woke (all of them
	// on a busy machine), the next one the rest: never a commit each
	total := 0
	for _, s := range sizes {
		total += s
	}
	assert.Equal(t, total, n, "batches %v", sizes)
	assert.Check(t, len(sizes) == 1 || len(sizes) == 2, "commits of %d concurrent deletions: batches %v", n, sizes)
	assert.Equal(t, db.Commits()-before, int64(len(sizes)), "batches %v", sizes)
	all, _, err := tb.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 0)
}

// A queued write is seen by readers at once, and writes of one key land in
// the order they were queued, also within one transaction.
func TestQueuedWritesAreReadAndOrdered(t *testing.T) {
	db, tb := openTable(t)
	path := db.bolt.Path()
	assert.NilError(t, tb.Put("a", &rec{"old", 1}))
	gate := make(chan struct{})
	db.beforeCommit = func(int) { <-gate }
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)

	del := tb.QueueDelete("a")
	_, err := tb.Get("a")
	assert.Check(t, errdefs.IsNotFound(err), "a queued deletion is seen by Get")
	all, _, err := tb.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 0, "and by List")
	put, err := tb.QueuePut("a", &rec{"new", 2})
	assert.NilError(t, err)
	put2, err := tb.QueuePut("b", &rec{"b", 3})
	assert.NilError(t, err)
	got, err := tb.Get("a")
	assert.NilError(t, err)
	assert.Equal(t, got.Name, "new")
	all, _, err = tb.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 2)

	release()
	assert.NilError(t, del.Wait())
	assert.NilError(t, put.Wait())
	assert.NilError(t, put2.Wait())
	assert.NilError(t, db.Close())

	// what the file holds after a reopen
	db2, err := Open(path)
	assert.NilError(t, err)
	defer db2.Close()
	tb2, err := NewTable[rec](db2, "things")
	assert.NilError(t, err)
	got, err = tb2.Get("a")
	assert.NilError(t, err)
	assert.Equal(t, got.Name, "new", "the put queued after the delete wins")
}

// A write into a missing bucket fails alone: the others of its batch commit.
func TestFailedWriteDoesNotFailItsBatch(t *testing.T) {
	db, tb := openTable(t)
	gate := make(chan struct{})
	first := true
	db.beforeCommit = func(int) {
		if first {
			first = false
			<-gate
		}
	}
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	p0 := tb.QueueDelete("zero") // held at the gate
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if db.queueLen() == 0 {
			return poll.Success()
		}
		return poll.Continue("not taken yet")
	})
	ghost := &Table[rec]{db: db, bucket: []byte("ghost")}
	bad, err := ghost.QueuePut("x", &rec{})
	assert.NilError(t, err)
	good, err := tb.QueuePut("y", &rec{"y", 1})
	assert.NilError(t, err)
	release()
	assert.NilError(t, p0.Wait())
	assert.ErrorContains(t, bad.Wait(), "no bucket ghost")
	assert.NilError(t, good.Wait())
	got, err := tb.Get("y")
	assert.NilError(t, err)
	assert.Equal(t, got.N, 1)
}

// BenchmarkConcurrentDeletes: 64 writers deleting at once; fsyncs/op is the
// number of transactions per deletion (1 without group commit).
func BenchmarkConcurrentDeletes(b *testing.B) {
	db, tb := openTable(b)
	const writers = 64
	before := db.Commits()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); _ = tb.Delete(fmt.Sprint(i, "/", w)) }()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(db.Commits()-before)/float64(b.N*writers), "fsyncs/op")
}
