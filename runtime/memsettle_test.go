package runtime

import (
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

func (m *memSettler) firedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fired
}

func waitFired(t *testing.T, m *memSettler, n int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if m.firedCount() >= n {
			return poll.Success()
		}
		return poll.Continue("not settled")
	}, poll.WithTimeout(10*time.Second))
}

// A burst of removals frees memory once, after it settles; a few removals
// do not.
func TestBulkRemovalFreesMemoryOnce(t *testing.T) {
	var freed atomic.Int32
	m := &memSettler{after: 300 * time.Millisecond, min: 5, free: func() { freed.Add(1) }}
	for range 4 {
		m.note()
	}
	waitFired(t, m, 1)
	assert.Equal(t, freed.Load(), int32(0), "4 removals are not a bulk removal")

	for range 12 {
		m.note()
	}
	waitFired(t, m, 2)
	assert.Equal(t, freed.Load(), int32(1))
	assert.Equal(t, m.firedCount(), 2, "one settle for the burst, not one per removal")
}
