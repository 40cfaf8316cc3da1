package logdriver

import (
	"sync"
	"sync/atomic"
	"time"
)

// ring is the non-blocking mode (mode=non-blocking): Log queues a copy of
// the entry and returns at once; one goroutine hands the queue to the
// driver. Past max-buffer-size bytes queued, new entries are dropped and
// counted, as dockerd's ring logger does, so a container never waits on a
// log server that is slow, gone or not there yet. The driver itself is
// opened by that goroutine, retried until it opens: a server that is down
// when the container starts does not fail the start.
type ring struct {
	open    func() (Driver, error)
	max     int64
	dropped atomic.Uint64

	mu     sync.Mutex
	wake   *sync.Cond
	queue  []Message
	bytes  int64
	closed bool
	// closing is closed by Close; done once run has returned
	closing, done chan struct{}

	// retryMin and retryMax bound the wait between attempts to open the
	// driver.
	retryMin, retryMax time.Duration
}

func newRing(open func() (Driver, error), max int64) *ring {
	return newRingRetry(open, max, 100*time.Millisecond)
}

func newRingRetry(open func() (Driver, error), max int64, retryMin time.Duration) *ring {
	r := &ring{open: open, max: max, closing: make(chan struct{}), done: make(chan struct{}), retryMin: retryMin, retryMax: 5 * time.Second}
	r.wake = sync.NewCond(&r.mu)
	go r.run()
	return r
}

// Dropped is how many entries never reached the driver: dropped because
// the buffer was full, refused by the driver, or still queued at Close with
// no driver to take them.
func (r *ring) Dropped() uint64 { return r.dropped.Load() }

func (r *ring) Log(m *Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.dropped.Add(1)
		return nil
	}
	n := int64(len(m.Line))
	if r.bytes+n > r.max && len(r.queue) > 0 {
		r.dropped.Add(1)
		return nil
	}
	r.queue = append(r.queue, Message{Stream: m.Stream, Line: append([]byte(nil), m.Line...), Time: m.Time})
	r.bytes += n
	r.wake.Signal()
	return nil
}

// take waits for queued entries (or Close) and returns them all.
func (r *ring) take() ([]Message, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.queue) == 0 && !r.closed {
		r.wake.Wait()
	}
	q := r.queue
	r.queue, r.bytes = nil, 0
	return q, r.closed
}

func (r *ring) run() {
	defer close(r.done)
	d := r.connect()
	if d == nil {
		return
	}
	defer d.Close()
	for {
		q, closed := r.take()
		for i := range q {
			if err := d.Log(&q[i]); err != nil {
				r.dropped.Add(1)
			}
		}
		if closed {
			// what arrived meanwhile
			r.mu.Lock()
			q = r.queue
			r.queue = nil
			r.mu.Unlock()
			for i := range q {
				if err := d.Log(&q[i]); err != nil {
					r.dropped.Add(1)
				}
			}
			return
		}
	}
}

// connect opens the driver, retrying with a growing wait until it opens or
// the ring is closed (nil then; what was queued counts as dropped).
func (r *ring) connect() Driver {
	wait := r.retryMin
	for {
		d, err := r.open()
		if err == nil {
			return d
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.closing:
			t.Stop()
			r.mu.Lock()
			r.dropped.Add(uint64(len(r.queue)))
			r.queue = nil
			r.mu.Unlock()
			return nil
		}
		wait = min(2*wait, r.retryMax)
	}
}

// closeWait bounds how long Close waits for the driver to take what is
// queued: a server that stopped answering must not hold the monitor.
const closeWait = 5 * time.Second

// Close hands what is queued to the driver (for at most closeWait) and
// closes it.
func (r *ring) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	r.wake.Broadcast()
	r.mu.Unlock()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	}
	return nil
}
