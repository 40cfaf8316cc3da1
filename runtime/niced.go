package runtime

import (
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// niceBackground is how much lower than the daemon's a bulk step of a
// start runs.
const niceBackground = 10

// niced runs f on an OS thread of its own, at a lower CPU priority than
// the daemon's. A start's bulk work (copying an image's volume content,
// thousands of files) then yields the CPU to API requests and to the
// clients that make them: eight such starts must not make `docker ps`
// wait for a CPU. Linux's nice is per thread; the thread is never unlocked,
// so it ends with f's goroutine and its niceness goes with it (threads the
// Go runtime creates meanwhile come from its template thread, not this
// one). The priority is best effort: f runs either way.
func niced(f func() error) error {
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		tid := unix.Gettid()
		// the syscall's value is 20 - nice
		if prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil {
			unix.Setpriority(unix.PRIO_PROCESS, tid, min(20-prio+niceBackground, 19))
		}
		done <- f()
	}()
	return <-done
}
