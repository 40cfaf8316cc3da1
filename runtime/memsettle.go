package runtime

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/berthd/berth/internal/memrelease"
	"github.com/sirupsen/logrus"
)

// After many containers are removed at once (docker rm -f $(docker ps -aq),
// compose down, prune), the heap they used is garbage, but the Go runtime
// returns freed pages to the OS only at the background scavenger's pace
// (minutes), so berthd's RSS stays near its peak. Once removals have
// stopped for settleAfter, and there were at least settleMin of them, the
// memory is returned at once.
const (
	settleAfter = 2 * time.Second
	settleMin   = 20
)

// memSettler counts removals and frees memory once a burst of them settles.
type memSettler struct {
	after time.Duration
	min   int
	free  func() // debug.FreeOSMemory

	mu      sync.Mutex
	removed int
	timer   *time.Timer
	fired   int // bursts that settled (tests)
}

// bulkRemoval is the process's one settler: the memory it returns is the
// process's.
var bulkRemoval = &memSettler{after: settleAfter, min: settleMin, free: freeOSMemory}

// note records one removal and (re)arms the settle timer.
func (m *memSettler) note() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed++
	if m.timer == nil {
		m.timer = time.AfterFunc(m.after, m.settle)
		return
	}
	m.timer.Reset(m.after)
}

func (m *memSettler) settle() {
	m.mu.Lock()
	n := m.removed
	m.removed = 0
	m.timer = nil
	m.fired++
	m.mu.Unlock()
	if n >= m.min {
		m.free()
	}
}

func freeOSMemory() {
	shed := memrelease.ShedThreads()
	debug.FreeOSMemory()
	logrus.Debugf("bulk removal settled: %d idle threads ended; %s", shed, memrelease.Breakdown())
}
