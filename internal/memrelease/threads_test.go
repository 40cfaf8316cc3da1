package memrelease

import (
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"gotest.tools/v3/assert"
)

// TestShedThreads: a burst of blocking system calls makes the runtime start
// a thread for each; once it is over, ShedThreads ends the idle ones down to
// the count before the burst, the second time too, and ends none when there
// are none to end.
func TestShedThreads(t *testing.T) {
	t.Cleanup(func() { baseline.Store(0) })
	// a fresh process gains a few threads for good the first time (the
	// runtime's template thread, its GC's): the daemon's baseline is taken
	// once its start has settled, so is this one, with every idle thread
	// ended (those of earlier tests too)
	baseline.Store(1)
	burst(24)
	ShedThreads()
	before := threadCount()
	assert.Assert(t, before > 0)
	baseline.Store(int64(before))
	for round := 0; round < 2; round++ {
		burst(24)
		grown := threadCount()
		assert.Assert(t, grown >= before+10, "round %d: the burst grew the threads from %d to %d only", round, before, grown)
		ended := ShedThreads()
		assert.Assert(t, ended > 0, "round %d", round)
		// the runtime may keep a few it did not have before (shedSlack)
		assert.Assert(t, threadCount() <= before+shedSlack, "round %d: %d threads before the burst, %d after shedding", round, before, threadCount())
	}
	assert.Equal(t, ShedThreads(), 0)
}

// TestShedThreadsWithoutBaseline: before the daemon's start settled there
// is no count to go back to: nothing is ended.
func TestShedThreadsWithoutBaseline(t *testing.T) {
	baseline.Store(0)
	burst(8)
	assert.Equal(t, ShedThreads(), 0)
}

// burst runs n goroutines that each block their thread in nanosleep(2) at
// the same time, as n concurrent blocking system calls do.
func burst(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := syscall.NsecToTimespec(int64(50 * time.Millisecond))
			syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}()
	}
	wg.Wait()
}
