package main

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/shim/proto"
)

// execProc is a running exec, known by its id for resize.
type execProc struct {
	master *os.File
}

// procError is the OCI runtime's refusal to start a process.
type procError struct{ msg string }

func (e *procError) Error() string { return e.msg }

type execIO struct {
	outs  []*output // output.lw unused here
	stdin *os.File
}

// exec starts the process (through berth-nsexec or `runc exec --detach`:
// either way it becomes the shim's child), answers with its pid, streams its
// stdio over conn and ends with a FrameExit carrying its exit code. The process outlives a client that goes
// away; its output is then discarded.
func (s *shim) exec(conn *net.UnixConn, br *bufio.Reader, req *proto.Request) {
	defer conn.Close()
	st, err := s.startExec(req)
	if err != nil {
		respondErr(conn, err)
		return
	}
	eio, wait := st.eio, st.wait
	alive := respond(conn, proto.Response{Pid: st.pid, Direct: st.direct}) == nil

	var wmu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range eio.outs {
		wg.Add(1)
		go func(o *output) {
			defer wg.Done()
			defer close(o.done)
			buf := getBuf()
			defer putBuf(buf)
			for {
				// Read after the header's room, so header and data go out
				// in one write.
				n, err := o.f.Read(buf[8:])
				if n > 0 {
					wmu.Lock()
					if alive {
						proto.PutFrameHeader(buf[:8], o.typ, n)
						if _, werr := conn.Write(buf[:8+n]); werr != nil {
							alive = false // keep draining so the process never blocks
						}
					}
					wmu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}(o)
	}
	go func() {
		var w *os.File
		if req.Stdin {
			w = eio.stdin
		}
		if copyInput(w, br) && eio.stdin != nil && !req.Terminal {
			eio.stdin.Close()
		}
	}()

	ws := <-wait
	// gone before its exit is told, so a resize that follows the exit is a
	// not-found, whoever asks first
	s.removeExec(req.ExecID)
	t := time.NewTimer(2 * time.Second)
	for _, o := range eio.outs {
		select {
		case <-o.done:
		case <-t.C:
		}
	}
	t.Stop()
	for _, o := range eio.outs {
		o.f.Close()
	}
	wg.Wait()
	if eio.stdin != nil && !req.Terminal {
		eio.stdin.Close()
	}
	wmu.Lock()
	if alive {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		proto.WriteFrame(conn, proto.FrameExit, strconv.AppendInt(nil, int64(exitCode(ws)), 10))
	}
	wmu.Unlock()
}

func (s *shim) startExec(req *proto.Request) (*started, error) {
	if req.ExecID == "" || len(req.Process) == 0 {
		return nil, kindError(proto.KindInvalid, "exec needs an id and a process")
	}
	s.mu.Lock()
	if s.status != proto.StatusRunning {
		s.mu.Unlock()
		return nil, kindError(proto.KindConflict, "container is not running")
	}
	if _, dup := s.execs[req.ExecID]; dup {
		s.mu.Unlock()
		return nil, kindError(proto.KindConflict, "exec "+req.ExecID+" is already running")
	}
	s.execSeq++
	n := strconv.Itoa(s.execSeq)
	ep := &execProc{}
	s.execs[req.ExecID] = ep
	s.mu.Unlock()

	st, err := s.runExec(req, n)
	s.mu.Lock()
	if err != nil {
		delete(s.execs, req.ExecID)
	} else if len(st.eio.outs) > 0 && req.Terminal {
		ep.master = st.eio.outs[0].f
	}
	s.mu.Unlock()
	return st, err
}

// started is a started exec process.
type started struct {
	pid    int
	wait   <-chan syscall.WaitStatus
	eio    *execIO
	direct bool // started by berth-nsexec, not the OCI runtime
}

// runExec starts the process through berth-nsexec when the container has
// the fast path, and through the runtime's exec otherwise or when the fast
// path cannot reproduce what the runtime would do.
func (s *shim) runExec(req *proto.Request, n string) (*started, error) {
	if fe := s.fastPath(); fe != nil && !req.RuntimeExec {
		st, err := directExec{s, fe}.start(req, n)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, errFallback) {
			return nil, err
		}
		if !errors.Is(err, errSpecFallback) {
			os.Stderr.WriteString("berth-shim: exec " + req.ExecID + " through " + s.cfg.RuntimeBinary + ": " + err.Error() + "\n")
		}
	}
	return runtimeExec{s}.start(req, n)
}

// execStdio makes the pipes of a process without a terminal: the shim's
// ends in eio, the process's in stdio (/dev/null for a stream not asked
// for) and childEnds, to close once it has started.
func (s *shim) execStdio(req *proto.Request, eio *execIO) (stdio []uintptr, childEnds []*os.File, err error) {
	null := s.devNull.Fd()
	stdio = []uintptr{null, null, null}
	if req.Terminal {
		return stdio, nil, nil
	}
	if req.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		eio.stdin, stdio[0] = w, r.Fd()
		childEnds = append(childEnds, r)
	}
	for i, want := range []bool{req.Stdout, req.Stderr} {
		if !want {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, childEnds, err
		}
		eio.outs = append(eio.outs, &output{f: r, typ: byte(i + 1), done: make(chan struct{})})
		stdio[i+1] = w.Fd() // Fd() also makes the child's end blocking
		childEnds = append(childEnds, w)
	}
	return stdio, childEnds, nil
}

// closeIO closes the shim's ends after a failed start.
func (eio *execIO) closeIO() {
	for _, o := range eio.outs {
		o.f.Close()
	}
	if eio.stdin != nil {
		eio.stdin.Close()
	}
}

func (s *shim) fastExec(fe *fastExec, req *proto.Request) (*started, error) {
	conf, err := fe.helperConfig(s.cfg.ID, req.Process, req.Terminal)
	if err != nil {
		return nil, err
	}
	if fe.frozen() {
		return nil, fallback("the container is paused")
	}
	eio := &execIO{}
	stdio, childEnds, err := s.execStdio(req, eio)
	if err != nil {
		closeAll(childEnds)
		eio.closeIO()
		return nil, err
	}
	s.reaper.beginPending()
	defer s.reaper.endPending()
	pid, wait, err := s.nsexec(fe, req, conf, eio, stdio)
	closeAll(childEnds)
	if err != nil {
		eio.closeIO()
		return nil, err
	}
	return &started{pid: pid, wait: wait, eio: eio, direct: true}, nil
}

func (s *shim) runcExec(req *proto.Request, n string) (int, <-chan syscall.WaitStatus, *execIO, error) {
	procPath := s.path("exec-" + n + ".json")
	pidPath := s.path("exec-" + n + ".pid")
	defer os.Remove(procPath)
	defer os.Remove(pidPath)
	if err := os.WriteFile(procPath, req.Process, 0o600); err != nil {
		return 0, nil, nil, err
	}
	args := []string{"exec", "--detach", "--pid-file", pidPath, "--process", procPath}
	eio := &execIO{}
	var cs *consoleSocket
	stdio, childEnds, err := s.execStdio(req, eio)
	fail := func(err error) (int, <-chan syscall.WaitStatus, *execIO, error) {
		closeAll(childEnds)
		eio.closeIO()
		return 0, nil, nil, err
	}
	if err != nil {
		return fail(err)
	}
	if req.Terminal {
		if cs, err = newConsoleSocket(s.path("c" + n + ".sock")); err != nil {
			return fail(err)
		}
		args = append(args, "--console-socket", cs.path)
	}
	s.reaper.beginPending()
	defer s.reaper.endPending()
	err = s.runc(stdio, append(args, s.cfg.ID)...)
	closeAll(childEnds)
	childEnds = nil
	if err != nil {
		if cs != nil {
			cs.close()
		}
		return fail(&procError{err.Error()})
	}
	if cs != nil {
		master, err := cs.master()
		if err != nil {
			return fail(err)
		}
		if req.Height > 0 && req.Width > 0 {
			resizePty(master, req.Height, req.Width)
		}
		eio.outs = []*output{{f: master, typ: proto.FrameStdout, done: make(chan struct{})}}
		if req.Stdin {
			eio.stdin = master
		}
	}
	pid, err := readPid(pidPath)
	if err != nil {
		return fail(err)
	}
	return pid, s.reaper.claim(pid), eio, nil
}

func (s *shim) removeExec(id string) {
	s.mu.Lock()
	delete(s.execs, id)
	s.mu.Unlock()
}
