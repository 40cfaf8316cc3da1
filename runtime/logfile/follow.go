package logfile

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval backs up inotify (and replaces it where inotify is not
// available): an append is never noticed later than this. A variable for
// the tests only (TestFollow turns the poll off to see inotify alone).
var pollInterval = 250 * time.Millisecond

// follow delivers what is appended to *f, moving on to the new file at path
// when the writer rolls the log (and leaving it in *f for the caller to close).
func (r *reader) follow(ctx context.Context, f **os.File, path string) error {
	notify, stop := watch(path)
	defer func() { stop() }()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	// catchUp delivers the complete lines written so far, across rolls.
	catchUp := func() error {
		if err := r.drain(false); err != nil {
			return err
		}
		for r.opts.Rotation.MaxSize > 0 {
			next := reopened(*f, path)
			if next == nil {
				return nil
			}
			// Rolled: the old file is complete, and what follows is in next.
			if err := r.drain(true); err != nil {
				next.Close()
				return err
			}
			(*f).Close()
			*f = next
			r.br.Reset(next)
			stop()
			notify, stop = watch(path)
			if err := r.drain(false); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := catchUp(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.opts.Done:
			// The writer is gone: whatever is in the files now is all there is.
			if err := catchUp(); err != nil {
				return err
			}
			return r.drain(true)
		case <-notify:
		case <-tick.C:
		}
	}
}

// reopened returns the file now at path when it is not f's (the log was
// rolled), nil when it is the same or there is none yet.
func reopened(f *os.File, path string) *os.File {
	next, err := os.Open(path)
	if err != nil {
		return nil
	}
	a, err1 := f.Stat()
	b, err2 := next.Stat()
	if err1 != nil || err2 != nil || os.SameFile(a, b) {
		next.Close()
		return nil
	}
	return next
}

// watch returns a channel that receives after the file at path is written
// to, and a function that releases the watch and its goroutine.
func watch(path string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return c, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_MOVE_SELF); err != nil {
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
