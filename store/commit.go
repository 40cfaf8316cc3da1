package store

import (
	"errors"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// op is one queued write: data nil deletes the key.
type op struct {
	bucket []byte
	key    string
	data   []byte
	done   chan struct{}
	err    error
}

func overlayKey(bucket []byte, key string) string { return string(bucket) + "\x00" + key }

// Pending is a queued write.
type Pending struct{ op *op }

// Wait returns once the write is committed (durable), with its error. A nil
// Pending is a write that was not needed.
func (p *Pending) Wait() error {
	if p == nil {
		return nil
	}
	<-p.op.done
	return p.op.err
}

// enqueue adds a write to the queue and starts a commit loop when none runs.
func (db *DB) enqueue(bucket []byte, key string, data []byte) *Pending {
	o := &op{bucket: bucket, key: key, data: data, done: make(chan struct{})}
	db.mu.Lock()
	db.queue = append(db.queue, o)
	db.overlay[overlayKey(bucket, key)] = o
	if !db.committing {
		db.committing = true
		go db.commitLoop()
	}
	db.mu.Unlock()
	return &Pending{op: o}
}

// commitLoop commits everything queued, one transaction per round, until the
// queue is empty: writers that queue during a commit go together in the next.
func (db *DB) commitLoop() {
	for {
		db.mu.Lock()
		batch := db.queue
		db.queue = nil
		if len(batch) == 0 {
			db.committing = false
			db.idle.Broadcast()
			db.mu.Unlock()
			return
		}
		db.mu.Unlock()

		if db.beforeCommit != nil {
			db.beforeCommit(len(batch))
		}
		db.paused.Lock()
		db.commit(batch)
		db.paused.Unlock()

		db.mu.Lock()
		for _, o := range batch {
			if k := overlayKey(o.bucket, o.key); db.overlay[k] == o {
				delete(db.overlay, k)
			}
		}
		db.mu.Unlock()
		for _, o := range batch {
			close(o.done)
		}
	}
}

// commit writes a batch in one transaction. When that fails, each write is
// tried alone, so that one bad write does not fail the others.
func (db *DB) commit(batch []*op) {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, o := range batch {
			if err := o.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		db.commits.Add(1)
		return
	}
	if len(batch) == 1 {
		batch[0].err = err
		return
	}
	for _, o := range batch {
		o.err = db.bolt.Update(o.apply)
		if o.err == nil {
			db.commits.Add(1)
		}
	}
}

func (o *op) apply(tx *bolt.Tx) error {
	b := tx.Bucket(o.bucket)
	if b == nil {
		return errors.New("store: no bucket " + string(o.bucket))
	}
	if o.data == nil {
		return b.Delete([]byte(o.key))
	}
	return b.Put([]byte(o.key), o.data)
}

// queued returns the latest queued write of a key: its data (nil for a
// deletion) and whether there is one.
func (db *DB) queued(bucket []byte, key string) ([]byte, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	o, ok := db.overlay[overlayKey(bucket, key)]
	if !ok {
		return nil, false
	}
	return o.data, true
}

// queuedIn are the latest queued writes of a bucket, by key.
func (db *DB) queuedIn(bucket []byte) map[string][]byte {
	db.mu.Lock()
	defer db.mu.Unlock()
	if len(db.overlay) == 0 {
		return nil
	}
	prefix := string(bucket) + "\x00"
	out := map[string][]byte{}
	for k, o := range db.overlay {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = o.data
		}
	}
	return out
}

// PauseCommits holds every commit until resume is called; writes queue
// meanwhile (and readers see them). For tests of the order and batching of
// writes in other packages.
func (db *DB) PauseCommits() (resume func()) {
	db.paused.Lock()
	return sync.OnceFunc(db.paused.Unlock)
}

// Uncommitted is the number of keys with a write queued or being committed.
func (db *DB) Uncommitted() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.overlay)
}
