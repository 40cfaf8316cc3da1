// Package store keeps berth's persistent metadata in one bbolt file under the
// data root. Each object kind lives in its own bucket as JSON, behind a typed
// Table; every write is a bbolt transaction, so a crash never leaves a record
// half-written.
package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// DB is the open metadata file.
type DB struct {
	bolt *bolt.DB
}

// Open opens (creating if needed) the metadata file at path.
func Open(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	return &DB{bolt: b}, nil
}

// Close closes the file.
func (db *DB) Close() error { return db.bolt.Close() }

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
	return &Table[T]{db: db, bucket: []byte(name)}, nil
}

// Put writes the record for id, replacing any previous one.
func (t *Table[T]) Put(id string, v *T) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", t.bucket, id, err)
	}
	return t.db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(t.bucket).Put([]byte(id), data)
	})
}

// Get reads the record for id. If there is none, ErrNotFound is returned.
func (t *Table[T]) Get(id string) (*T, error) {
	var data []byte
	err := t.db.bolt.View(func(tx *bolt.Tx) error {
		if d := tx.Bucket(t.bucket).Get([]byte(id)); d != nil {
			data = append([]byte(nil), d...)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// Delete removes the record for id; deleting a missing record is not an error.
func (t *Table[T]) Delete(id string) error {
	return t.db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(t.bucket).Delete([]byte(id))
	})
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
	err := t.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(t.bucket).ForEach(func(k, d []byte) error {
			v := new(T)
			if err := json.Unmarshal(d, v); err != nil {
				bad = append(bad, Corrupt{ID: string(k), Err: err})
				return nil
			}
			out[string(k)] = v
			return nil
		})
	})
	return out, bad, err
}
