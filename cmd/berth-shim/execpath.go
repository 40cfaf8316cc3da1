package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/shim/proto"
)

// execPath starts the process of an exec, one way or the other: the OCI
// runtime's own exec (runtimeExec), or berth-nsexec doing what runc 1.1's
// exec does (directExec). Either way the process becomes the shim's child
// and exec() streams it the same.
type execPath interface {
	start(req *proto.Request, n string) (*started, error)
}

// runtimeExec is `<runtime> exec --detach`: always right, 35-40 ms.
type runtimeExec struct{ s *shim }

func (p runtimeExec) start(req *proto.Request, n string) (*started, error) {
	pid, wait, eio, err := p.s.runcExec(req, n)
	if err != nil {
		return nil, err
	}
	return &started{pid: pid, wait: wait, eio: eio}, nil
}

// directExec is berth-nsexec. An error wrapping errFallback means nothing
// of the process ran: the caller uses the runtime instead.
type directExec struct {
	s  *shim
	fe *fastExec
}

func (p directExec) start(req *proto.Request, _ string) (*started, error) {
	return p.s.fastExec(p.fe, req)
}

// provenRuntimes are the first lines of `<runtime> --version` of the
// runtimes the exec equivalence suite (runtime/shim/fastexec_test.go,
// TestExecEquivalence*) passed against. The fast path reproduces what
// that runc does; any other runtime or version, even another runc 1.1,
// gets its own exec until the suite has passed against it and it is added
// here (TestExecEquivalenceProvenRuntime says which one is installed).
var provenRuntimes = []string{
	"runc version 1.1.5+ds1", // Debian 12 (1.1.5+ds1-1+deb12u1), proven 2026-12
}

// provenRuntime says why the fast path is not for this runtime ("" when
// it is). It runs `<runtime> --version` once, at the container's first
// exec: a container that never execs pays nothing.
func (s *shim) provenRuntime() string {
	v, err := s.runtimeVersion()
	if err != nil {
		return fmt.Sprintf("%s --version: %v", s.cfg.RuntimeBinary, err)
	}
	if !slices.Contains(provenRuntimes, v) {
		return fmt.Sprintf("the fast path is proven for %q, not for %q", provenRuntimes, v)
	}
	return ""
}

// runtimeVersion is the first line of `<runtime> --version`. The shim
// reaps every child, so the runtime runs through the reaper.
func (s *shim) runtimeVersion() (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	null := s.devNull.Fd()
	pid, wait, err := s.reaper.start([]string{s.runtimePath, "--version"}, []uintptr{null, w.Fd(), null}, s.env)
	w.Close()
	if err != nil {
		return "", err
	}
	// a runtime that hangs must not hang the exec: it gets the runtime's
	// own exec, which then fails in the runtime's words
	t := time.AfterFunc(5*time.Second, func() { s.reaper.signal(pid, syscall.SIGKILL) })
	out, rerr := io.ReadAll(io.LimitReader(r, 4096))
	ws := <-wait
	t.Stop()
	if rerr != nil {
		return "", rerr
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return "", fmt.Errorf("%s", describe(ws))
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
	return string(bytes.TrimSpace(line)), nil
}
