// Package store keeps berth's persistent metadata in one bbolt file under the
// data root. Each object kind lives in its own bucket as JSON, behind a typed
// Table; every write is a bbolt transaction, so a crash never leaves a record
// half-written.
//
// Writes are group-committed (commit.go): writers that arrive while a commit
// is under way are written together in the next transaction, so N concurrent
// writers pay one or two fsyncs instead of N, and a lone writer waits for
// nothing but its own commit. A write can also be queued under a caller's
// lock (Table.Queue*) and waited for after the lock is released: its place
// in the order of writes is fixed when it is queued, and readers see it from
// then on.
package store

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// DB is the open metadata file.
type DB struct {
	bolt *bolt.DB

	mu sync.Mutex
	// queue are the writes not yet taken by a commit, in the order they
	// were made; overlay is the latest queued or committing write of each
	// key, which readers see before the file.
	queue      []*op
	overlay    map[string]*op
	committing bool
	idle       *sync.Cond // signalled when a commit loop ends

	commits atomic.Int64 // write transactions committed (the test seam)
	// beforeCommit, set by tests before the first write, runs in the commit
	// loop before each transaction with the number of writes in it.
	beforeCommit func(n int)
	paused       sync.Mutex // held by PauseCommits
}

// Open opens (creating if needed) the metadata file at path.
func Open(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	db := &DB{bolt: b, overlay: map[string]*op{}}
	db.idle = sync.NewCond(&db.mu)
	return db, nil
}

// Close waits for queued writes to be committed and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	for db.committing {
		db.idle.Wait()
	}
	db.mu.Unlock()
	return db.bolt.Close()
}

// Commits is the number of write transactions committed so far: each is one
// fsync of the file.
func (db *DB) Commits() int64 { return db.commits.Load() }

// Table is a typed bucket of JSON records keyed by id.
type Table[T any] struct {
	db     *DB
	bucket []byte
}

// NewTable returns the table named name, creating its bucket.
func NewTable[T any](db *DB, name string) (*Table[T], error) {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(name))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	db.commits.Add(1)
	return &Table[T]{db: db, bucket: []byte(name)}, nil
}

// Put writes the record for id, replacing any previous one.
func (t *Table[T]) Put(id string, v *T) error {
	p, err := t.QueuePut(id, v)
	if err != nil {
		return err
	}
	return p.Wait()
}

// Delete removes the record for id; deleting a missing record is not an error.
func (t *Table[T]) Delete(id string) error { return t.QueueDelete(id).Wait() }

// QueuePut queues the write of id's record and returns at once: readers see
// it from now on, and it is committed after every write queued before it.
// The caller must Wait for it before it counts as durable.
func (t *Table[T]) QueuePut(id string, v *T) (*Pending, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s/%s: %w", t.bucket, id, err)
	}
	return t.db.enqueue(t.bucket, id, data), nil
}

// QueueDelete queues the removal of id's record, as QueuePut.
func (t *Table[T]) QueueDelete(id string) *Pending { return t.db.enqueue(t.bucket, id, nil) }

// Get reads the record for id. If there is none, ErrNotFound is returned.
func (t *Table[T]) Get(id string) (*T, error) {
	data, queued := t.db.queued(t.bucket, id)
	if !queued {
		err := t.db.bolt.View(func(tx *bolt.Tx) error {
			if d := tx.Bucket(t.bucket).Get([]byte(id)); d != nil {
				data = append([]byte(nil), d...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if data == nil {
		return nil, fmt.Errorf("%s/%s: %w", t.bucket, id, errdefs.ErrNotFound)
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decode %s/%s: %w", t.bucket, id, errdefs.ErrDataLoss)
	}
	return v, nil
}

// Corrupt is a record that could not be decoded.
type Corrupt struct {
	ID  string
	Err error
}

// List returns every decodable record by id, and the ids of records that
// could not be decoded (a truncated or damaged record must not stop the
// daemon from serving the rest).
func (t *Table[T]) List() (map[string]*T, []Corrupt, error) {
	out := map[string]*T{}
	var bad []Corrupt
	decode := func(k string, d []byte) {
		v := new(T)
		if err := json.Unmarshal(d, v); err != nil {
			bad = append(bad, Corrupt{ID: k, Err: err})
			return
		}
		out[k] = v
	}
	// the queued writes first: one committed meanwhile is in the file too,
	// and the queued one wins
	pending := t.db.queuedIn(t.bucket)
	err := t.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(t.bucket).ForEach(func(k, d []byte) error {
			if _, queued := pending[string(k)]; !queued {
				decode(string(k), d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	for k, d := range pending {
		if d != nil {
			decode(k, d)
		}
	}
	return out, bad, nil
}
