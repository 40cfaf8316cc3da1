package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/shim/proto"
)

func (s *shim) serve() {
	for {
		conn, err := s.listener.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {} // shutting down: initExited exits the process
			}
			if errors.Is(err, os.ErrDeadlineExceeded) { // set by a sleep (sleep.go)
				s.sleep.park(nil)
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.serveConn(conn)
	}
}

// serveConn serves one connection's request in a goroutine of its own;
// while it is served the shim stays awake.
func (s *shim) serveConn(conn *net.UnixConn) {
	s.sleep.busy.Add(1)
	s.sleep.touch()
	go func() {
		s.handle(conn, sync.OnceFunc(func() {
			s.sleep.touch()
			s.sleep.busy.Add(-1)
		}))
		s.trimLater()
	}()
}

// trimThreshold is how much heap (objects, live or garbage not yet
// collected, plus free pages not yet returned) a burst must leave behind to
// be worth a forced GC. An idle shim holds about 150 KiB; a collection
// touches GC metadata (its mark-bit arenas: hundreds of KiB the first few
// times), so a shim that served a few requests is better left alone.
const trimThreshold = 512 << 10

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}

func heapRetained() uint64 {
	metrics.Read(heapSamples)
	var n uint64
	for _, s := range heapSamples {
		if s.Value.Kind() == metrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return n
}

// trimLater returns the memory a burst of requests used to the OS once no
// request has ended for a second (held Wait and attach connections do not
// count). The background scavenger would keep it (it retains up to the heap
// goal), and a shim spends its life idle.
func (s *shim) trimLater() {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if s.trim == nil {
		s.trim = time.AfterFunc(time.Second, func() {
			if heapRetained() > trimThreshold {
				debug.FreeOSMemory()
			}
		})
		return
	}
	s.trim.Reset(time.Second)
}

func respond(conn net.Conn, r proto.Response) error {
	b, _ := json.Marshal(r)
	_, err := conn.Write(append(b, '\n'))
	return err
}

func respondErr(conn net.Conn, err error) {
	r := proto.Response{Error: err.Error()}
	var ke *kindErr
	var pe *procError
	if errors.As(err, &ke) {
		r.Kind = ke.kind
	} else if errors.As(err, &pe) {
		r.Kind, r.ExitCode = proto.KindProcess, proto.ExitCodeFor(pe.msg)
	}
	respond(conn, r)
}

// handle serves one request; done is called when it no longer keeps the
// shim awake (at its end, or once a Wait is held).
func (s *shim) handle(conn *net.UnixConn, done func()) {
	defer done()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 1024)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return
	}
	var req proto.Request
	if err := json.Unmarshal(line, &req); err != nil {
		respondErr(conn, kindError(proto.KindInvalid, "bad request: "+err.Error()))
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	if req.V != proto.Version {
		respondErr(conn, kindError(proto.KindInvalid, "unsupported protocol version "+strconv.Itoa(req.V)))
		conn.Close()
		return
	}
	switch req.Op {
	case proto.OpAttach:
		s.attach(conn, br, &req)
		return
	case proto.OpExec:
		s.exec(conn, br, &req)
		return
	case proto.OpWait:
		s.wait(conn, done)
		return
	}
	defer conn.Close()
	var err2 error
	switch req.Op {
	case proto.OpState:
		respond(conn, s.state())
		return
	case proto.OpStart:
		err2 = s.start()
	case proto.OpResize:
		err2 = s.resize(req.ExecID, req.Height, req.Width)
	case proto.OpKill:
		err2 = s.kill(syscall.Signal(req.Signal))
	case proto.OpRelease:
		if err2 = s.releasable(); err2 == nil {
			// the shim exits once released: answer first
			respond(conn, proto.Response{})
			s.released.Do(func() { close(s.release) })
			return
		}
	default:
		err2 = kindError(proto.KindInvalid, "unknown op "+strconv.Quote(req.Op))
	}
	if err2 != nil {
		respondErr(conn, err2)
		return
	}
	respond(conn, proto.Response{})
}

func (s *shim) state() proto.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.Response{Pid: s.initPid, ShimPid: os.Getpid(), Status: s.status, Exit: s.exit, LogDropped: s.dropped()}
}

func (s *shim) kill(sig syscall.Signal) error {
	if sig <= 0 || sig > 64 {
		return kindError(proto.KindInvalid, "invalid signal "+strconv.Itoa(int(sig)))
	}
	live, err := s.reaper.signal(s.initPid, sig)
	if !live {
		return kindError(proto.KindConflict, "container is not running")
	}
	return err
}

// releasable returns once the runtime's state is deleted, so that berthd,
// released, may create the same container again; or says why the shim
// cannot be released.
func (s *shim) releasable() error {
	s.mu.Lock()
	stopped := s.exit != nil
	s.mu.Unlock()
	if !stopped {
		return kindError(proto.KindConflict, "container is still running")
	}
	<-s.exited
	return nil
}

func (s *shim) resize(execID string, h, w uint16) error {
	if h == 0 || w == 0 {
		return kindError(proto.KindInvalid, "invalid console size")
	}
	var master *os.File
	s.mu.Lock()
	if execID != "" {
		e, ok := s.execs[execID]
		if !ok {
			s.mu.Unlock()
			return kindError(proto.KindNotFound, "no such exec: "+execID)
		}
		master = e.master
	} else {
		if s.status == proto.StatusStopped {
			s.mu.Unlock()
			return kindError(proto.KindConflict, "container is not running")
		}
		master = s.master
	}
	s.mu.Unlock()
	if master == nil {
		return kindError(proto.KindInvalid, "the process has no terminal")
	}
	return resizePty(master, h, w)
}

// wait answers when the container has exited. The connection is held by
// this one goroutine, blocked reading: a client that goes away ends it.
func (s *shim) wait(conn *net.UnixConn, held func()) {
	s.mu.Lock()
	if s.exit != nil {
		r := proto.Response{Pid: s.initPid, Status: s.status, Exit: s.exit}
		s.mu.Unlock()
		respond(conn, r)
		conn.Close()
		return
	}
	s.waiters[conn] = struct{}{}
	s.mu.Unlock()
	held()
	s.holdWaiter(conn)
}

// holdWaiter blocks reading a held Wait connection.
func (s *shim) holdWaiter(conn *net.UnixConn) {
	var b [1]byte
	conn.Read(b[:]) // returns when the client leaves or initExited closes conn
	s.mu.Lock()
	if s.waiters != nil {
		delete(s.waiters, conn)
	}
	s.mu.Unlock()
	conn.Close()
}

// attach streams the init's output produced from now on, and feeds the
// client's bytes to its stdin. A client's end of input closes the
// container's stdin when StdinOnce is set without a terminal (Docker's
// rule); otherwise it ends the session.
func (s *shim) attach(conn *net.UnixConn, br *bufio.Reader, req *proto.Request) {
	// Register before answering, so output produced once the client knows
	// it is attached (and starts the container) is never missed; the
	// writer starts after the answer so frames follow it.
	var sub *subscriber
	if req.Stdout || req.Stderr {
		if sub = s.hub.add(conn, req.Stdout, req.Stderr); sub == nil {
			respond(conn, proto.Response{})
			conn.Close() // the output has already ended
			return
		}
	}
	if err := respond(conn, proto.Response{}); err != nil {
		if sub != nil {
			sub.abort()
			s.hub.startWriter(sub)
		}
		conn.Close()
		return
	}
	if sub != nil {
		s.hub.startWriter(sub)
	}
	defer func() {
		if sub != nil {
			sub.abort()
		} else {
			conn.Close()
		}
	}()
	s.mu.Lock()
	stdin := s.stdin
	s.mu.Unlock()
	if !req.Stdin {
		stdin = nil
	}
	if copyInput(stdin, br) && stdin != nil && s.cfg.StdinOnce && !s.cfg.Terminal {
		s.closeStdin()
		if sub != nil {
			<-sub.done // keep streaming output until the container ends it
		}
	}
}

// copyInput copies the client's bytes to w (nil: discards them) until the
// client's end of input, and reports whether that was a clean end (EOF)
// rather than an error. Write errors (the process closed its stdin) do not
// stop it.
func copyInput(w io.Writer, r io.Reader) bool {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 && w != nil {
			if _, werr := w.Write(buf[:n]); werr != nil {
				w = nil
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func (s *shim) closeStdin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stdin != nil && s.stdin != s.master {
		s.stdin.Close()
		s.stdin = nil
	}
}
