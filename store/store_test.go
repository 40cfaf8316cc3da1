package store

import (
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
)

type rec struct {
	Name string
	N    int
}

func TestTableRoundTrip(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	assert.NilError(t, err)
	defer db.Close()
	tb, err := NewTable[rec](db, "things")
	assert.NilError(t, err)

	_, err = tb.Get("a")
	assert.Check(t, errdefs.IsNotFound(err))

	assert.NilError(t, tb.Put("a", &rec{"x", 1}))
	assert.NilError(t, tb.Put("b", &rec{"y", 2}))
	got, err := tb.Get("a")
	assert.NilError(t, err)
	assert.DeepEqual(t, *got, rec{"x", 1})

	all, bad, err := tb.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 2)
	assert.Equal(t, len(bad), 0)

	assert.NilError(t, tb.Delete("a"))
	assert.NilError(t, tb.Delete("a"))
	_, err = tb.Get("a")
	assert.Check(t, errdefs.IsNotFound(err))
}

func TestCorruptRecordIsReportedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := Open(path)
	assert.NilError(t, err)
	tb, err := NewTable[rec](db, "things")
	assert.NilError(t, err)
	assert.NilError(t, tb.Put("good", &rec{"ok", 1}))
	assert.NilError(t, db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("things")).Put([]byte("bad"), []byte(`{"Name":"tru`))
	}))
	all, bad, err := tb.List()
	assert.NilError(t, err)
	assert.Equal(t, len(all), 1)
	assert.Equal(t, len(bad), 1)
	assert.Equal(t, bad[0].ID, "bad")
	_, err = tb.Get("bad")
	assert.Check(t, errdefs.IsDataLoss(err))
	assert.NilError(t, db.Close())
}
