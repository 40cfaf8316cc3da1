package memrelease

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The Go runtime never ends an OS thread it started (golang/go#14592): a
// burst of blocking system calls (mounts, cgroup and namespace work of
// dozens of concurrent removals) leaves the process with every thread the
// burst needed, each with its signal stack, its stack's touched pages and
// its runtime structures (~50-60 kB here), for the rest of its life. A
// goroutine that returns while locked to its thread ends the thread, which
// is how ShedThreads gives them back.

// shedSlack is how many threads above the baseline are left alone: the
// runtime's template thread (started the first time a locked thread needs
// a new one) and a spare or two are not worth churning.
const shedSlack = 3

// baseline is the thread count of the settled daemon (AfterStartup).
var baseline atomic.Int64

// ShedThreads ends idle threads above the count the daemon had once its
// start settled (if more than shedSlack above it), and returns how many it
// ended. It runs one goroutine per thread to end, each locked to its own
// thread until all are, so that each ends a different one. A thread busy
// in a system call is not taken, so if fewer are idle than counted the
// runtime starts threads for the rest and ends them too: never more
// threads after than before.
func ShedThreads() int {
	keep := int(baseline.Load())
	n := threadCount() - keep
	if keep == 0 || n <= shedSlack {
		return 0
	}
	var locked, done sync.WaitGroup
	release := make(chan struct{})
	locked.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			locked.Done()
			<-release
			// returning without UnlockOSThread ends the thread
		}()
	}
	locked.Wait()
	close(release)
	done.Wait()
	// a thread ends just after its goroutine returns: wait for that, so
	// that what the threads held is free when this returns
	deadline := time.Now().Add(time.Second)
	for threadCount() > keep+shedSlack && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return n
}

// threadCount is the process's number of threads (0 if unknown).
func threadCount() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nThreads:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	n, _ := strconv.Atoi(string(bytes.TrimSpace(line)))
	return n
}
