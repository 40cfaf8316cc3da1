package diskspace

import (
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

func TestReserve(t *testing.T) {
	assert.Equal(t, Reserve(64<<20), uint64(64<<20)/100) // a small tmpfs keeps working
	assert.Equal(t, Reserve(10<<30), uint64(10<<30)/100)
	assert.Equal(t, Reserve(1<<40), uint64(MaxReserve))
	total, free, ok := Totals(&unix.Statfs_t{Bsize: 4096, Frsize: 1024, Blocks: 100, Bavail: 40})
	assert.Assert(t, ok)
	assert.Equal(t, total, uint64(100*1024))
	assert.Equal(t, free, uint64(40*1024))
}
