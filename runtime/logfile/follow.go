package logfile

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval backs up inotify (and replaces it where inotify is not
// available): an append is never noticed later than this.
const pollInterval = 250 * time.Millisecond

func (r *reader) follow(ctx context.Context, f *os.File, path string) error {
	notify, stop := watch(path)
	defer stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	done := r.opts.Done
	for {
		if err := r.drain(false); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			// The writer is gone: whatever is in the file now is all there is.
			return r.drain(true)
		case <-notify:
		case <-tick.C:
		}
	}
}

// watch returns a channel that receives after the file at path is written
// to, and a function that releases the watch and its goroutine.
func watch(path string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return c, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return c, func() {}
	}
	// A non-blocking fd in an os.File uses the runtime poller, so the reading
	// goroutine parks instead of holding a thread, and Close wakes it.
	nf := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := nf.Read(buf); err != nil {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}()
	return c, func() { nf.Close() }
}

// waitForFile waits for a log that does not exist yet (a container that has
// not written anything), polling its directory.
func waitForFile(ctx context.Context, path string, done <-chan struct{}) (*os.File, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
			if f, err := os.Open(path); err == nil {
				return f, nil
			}
			return nil, nil
		case <-tick.C:
		}
	}
}
