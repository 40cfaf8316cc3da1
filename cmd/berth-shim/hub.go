package main

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/berthd/berth/runtime/logfile"
	"github.com/berthd/berth/runtime/shim/proto"
)

// maxQueued is how much output may wait for one attach client. Past it the
// output copier waits for that client to make progress (so a healthy client
// that reads a burst slower than it is produced loses nothing, as with
// Docker), but a client that makes no progress for stallTimeout is
// disconnected: a stuck or vanished client holds the container up at most
// that long, once.
const (
	maxQueued    = 1 << 20
	stallTimeout = 2 * time.Second
)

// output is one stream of the container's init: a pipe read end, or the pty
// master.
type output struct {
	f    *os.File
	typ  byte
	lw   *logfile.LineWriter
	done chan struct{}
}

// bufs recycles the copy buffers of execs (one exec after another would
// otherwise make 32 KiB of garbage each, and garbage means collections).
var bufs = make(chan []byte, 4)

const bufSize = 16 * 1024

func getBuf() []byte {
	select {
	case b := <-bufs:
		return b
	default:
		return make([]byte, bufSize+8) // room for a frame header
	}
}

func putBuf(b []byte) {
	select {
	case bufs <- b:
	default:
	}
}

func (s *shim) copyOutput(o *output) {
	defer close(o.done)
	buf := make([]byte, bufSize)
	var scratch []*subscriber
	for {
		n, err := o.f.Read(buf)
		if n > 0 {
			s.sleep.touch()
			if _, werr := o.lw.Write(buf[:n]); werr != nil {
				logErr("log", werr)
			}
			s.hub.broadcast(o.typ, buf[:n], &scratch)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // set by a sleep (sleep.go)
			s.sleep.park(o)
			continue
		}
		if err != nil { // EOF; EIO from a pty master once the last slave fd is closed
			if werr := o.lw.Flush(); werr != nil {
				logErr("log", werr)
			}
			return
		}
	}
}

var logOnce sync.Once

// logErr reports a log write failure once (to shim.log), not per line.
func logErr(what string, err error) {
	logOnce.Do(func() { os.Stderr.WriteString("berth-shim: " + what + ": " + err.Error() + "\n") })
}

// hub fans the init's output out to the attached clients.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add registers an attach client; it returns nil once the output has ended.
func (h *hub) add(conn net.Conn, stdout, stderr bool) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	sub := &subscriber{conn: conn, wake: make(chan struct{}, 1), progress: make(chan struct{}, 1), done: make(chan struct{})}
	sub.want[proto.FrameStdout] = stdout
	sub.want[proto.FrameStderr] = stderr
	h.subs[sub] = struct{}{}
	h.wg.Add(1)
	return sub
}

// startWriter starts the goroutine that writes sub's queue to its client.
func (h *hub) startWriter(sub *subscriber) {
	go func() {
		defer h.wg.Done()
		sub.run()
		h.mu.Lock()
		delete(h.subs, sub)
		h.mu.Unlock()
		close(sub.done)
	}()
}

// attached says whether a client is attached.
func (h *hub) attached() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

// broadcast queues p for every client that wants stream typ. scratch is
// the calling copier's own list, reused between calls.
func (h *hub) broadcast(typ byte, p []byte, scratch *[]*subscriber) {
	h.mu.Lock()
	if len(h.subs) == 0 {
		h.mu.Unlock()
		return
	}
	subs := (*scratch)[:0]
	for sub := range h.subs {
		if sub.want[typ] {
			subs = append(subs, sub)
		}
	}
	*scratch = subs
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	frame := proto.AppendFrame(make([]byte, 0, 8+len(p)), typ, p)
	for _, sub := range subs {
		sub.enqueue(frame) // frames are shared read-only between clients
	}
	clear(subs)
}

// closeAll ends every attach session after its queued output is written.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	for sub := range h.subs {
		sub.finish()
	}
	h.mu.Unlock()
}

// wait waits (bounded) for the attach writers to flush.
func (h *hub) wait(limit time.Duration) {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// subscriber is one attach client's output side: a queue drained by its own
// writer goroutine.
type subscriber struct {
	conn     net.Conn
	want     [3]bool
	wake     chan struct{}
	progress chan struct{} // the writer wrote something
	done     chan struct{} // closed when the writer has finished

	mu       sync.Mutex
	queue    [][]byte
	queued   int
	finished bool // write what is queued, then close
	aborted  bool // close now
}

func (s *subscriber) enqueue(frame []byte) {
	var stall *time.Timer
	for {
		s.mu.Lock()
		if s.finished || s.aborted {
			s.mu.Unlock()
			return
		}
		if s.queued < maxQueued {
			s.queue = append(s.queue, frame)
			s.queued += len(frame)
			s.mu.Unlock()
			s.signal()
			if stall != nil {
				stall.Stop()
			}
			return
		}
		s.mu.Unlock()
		if stall == nil {
			stall = time.NewTimer(stallTimeout)
		}
		select {
		case <-s.progress:
			if !stall.Stop() {
				<-stall.C
			}
			stall.Reset(stallTimeout)
		case <-stall.C:
			s.abort() // also unblocks a writer stuck on this client
			return
		}
	}
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
	s.signal()
}

// abort ends the session without flushing (the client went away).
func (s *subscriber) abort() {
	s.mu.Lock()
	s.aborted = true
	s.mu.Unlock()
	s.conn.Close()
	s.signal()
}

func (s *subscriber) run() {
	defer s.conn.Close()
	for range s.wake {
		s.mu.Lock()
		q, finished, aborted := s.queue, s.finished, s.aborted
		s.queue, s.queued = nil, 0
		s.mu.Unlock()
		if aborted {
			return
		}
		if len(q) > 0 {
			bufs := net.Buffers(q)
			if _, err := bufs.WriteTo(s.conn); err != nil {
				return
			}
			select {
			case s.progress <- struct{}{}:
			default:
			}
		}
		if finished {
			return
		}
	}
}
