package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/berthd/berth/runtime/shim/proto"
)

type shim struct {
	dir         string
	cfg         *proto.Config
	reaper      *reaper
	devNull     *os.File
	env         []string
	runtimePath string
	rootArgs    []string

	log     logdriver.Driver
	dropped func() uint64 // the non-blocking mode's dropped entries
	outputs []*output
	hub     hub
	master  *os.File // the init's pty master (Terminal)
	initPid int
	oomFile string // memory cgroup file with the oom_kill counter

	// The exec fast path (fastexec.go): captured from the created init,
	// set up at the first exec; nil: execs use runc.
	captured chan struct{} // closed once fastCap is set (or not)
	fastCap  *fastCapture
	fastOnce sync.Once
	fastDone atomic.Bool // fastOnce has run: fast is the path, or nil for none
	fast     *fastExec

	startMu sync.Mutex // one start at a time

	trimMu sync.Mutex
	trim   *time.Timer

	sleep *sleeper // sleep.go

	mu       sync.Mutex
	stdin    *os.File // pipe to the init's stdin, or the pty master; nil when closed
	status   string
	exit     *proto.Exit
	waiters  map[net.Conn]struct{}
	execs    map[string]*execProc
	execSeq  int
	exited   chan struct{} // closed once exit.json is written, the waiters told and runc state deleted
	release  chan struct{}
	released sync.Once
	listener *net.UnixListener
}

func newShim(dir string, cfg *proto.Config) *shim {
	s := &shim{
		dir:     dir,
		cfg:     cfg,
		reaper:  newReaper(),
		env:     runtimeEnv(),
		waiters: map[net.Conn]struct{}{},
		execs:   map[string]*execProc{},
		exited:  make(chan struct{}),
		release: make(chan struct{}),
		dropped: func() uint64 { return 0 },
		sleep:   newSleeper(),
	}
	s.hub.subs = map[*subscriber]struct{}{}
	s.runtimePath = lookPath(cfg.RuntimeBinary)
	if cfg.RuntimeRoot != "" {
		s.rootArgs = []string{"--root", cfg.RuntimeRoot}
	}
	s.rootArgs = append(s.rootArgs, cfg.RuntimeArgs...)
	return s
}

func (s *shim) path(name string) string { return filepath.Join(s.dir, name) }

// create runs `runc create` with the container's stdio and starts copying
// its output to the log. The container does not run user code until start.
func (s *shim) create() error {
	var err error
	// read-write: it is the stdout and stderr of a process whose output
	// nobody attached to (a detached exec), which must be able to write
	if s.devNull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
		return err
	}
	if err := s.openLog(); err != nil {
		return err
	}
	s.reaper.beginPending()
	defer s.reaper.endPending()
	pidPath := s.path(proto.PidFile)
	os.Remove(pidPath)
	args := []string{"create", "--bundle", s.cfg.Bundle, "--pid-file", pidPath}

	var stdio []uintptr // nil: /dev/null
	var childEnds []*os.File
	var cs *consoleSocket
	if s.cfg.Terminal {
		if cs, err = newConsoleSocket(s.path("console.sock")); err != nil {
			return err
		}
		args = append(args, "--console-socket", cs.path)
	} else {
		stdio = []uintptr{s.devNull.Fd(), 0, 0}
		if s.cfg.OpenStdin {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			s.stdin, stdio[0] = w, r.Fd()
			childEnds = append(childEnds, r)
		}
		for i, name := range []string{"stdout", "stderr"} {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(childEnds)
				return err
			}
			s.outputs = append(s.outputs, &output{f: r, typ: byte(i + 1), lw: logfile.NewLineWriter(&logdriver.Appender{D: s.log}, name)})
			stdio[i+1] = w.Fd() // Fd() also makes the child's end blocking
			childEnds = append(childEnds, w)
		}
	}
	err = s.runc(stdio, append(args, s.cfg.ID)...)
	closeAll(childEnds)
	if err != nil {
		if cs != nil {
			cs.close()
		}
		return err
	}
	if cs != nil {
		if s.master, err = cs.master(); err != nil {
			return err
		}
		if s.cfg.OpenStdin {
			s.stdin = s.master
		}
		if s.cfg.ConsoleHeight > 0 && s.cfg.ConsoleWidth > 0 {
			resizePty(s.master, s.cfg.ConsoleHeight, s.cfg.ConsoleWidth)
		}
		s.outputs = []*output{{f: s.master, typ: proto.FrameStdout, lw: logfile.NewLineWriter(&logdriver.Appender{D: s.log}, "stdout")}}
	}
	if s.initPid, err = readPid(pidPath); err != nil {
		return err
	}
	s.startCapture()
	s.oomFile = memCgroupFile(s.initPid)
	s.status = proto.StatusCreated
	for _, o := range s.outputs {
		o.done = make(chan struct{})
		go s.copyOutput(o)
	}
	s.reaper.watch(s.initPid, s.initExited)
	return nil
}

// openLog opens the container's logging driver before the container
// exists: a driver that cannot start fails the create, as dockerd fails
// the start ("failed to initialize logging driver").
func (s *shim) openLog() error {
	if s.cfg.Log == nil {
		w, err := logfile.Open(s.cfg.LogPath, s.cfg.LogRotation, s.cfg.LogAttrs)
		if err != nil {
			return err
		}
		s.log = logdriver.File(w)
		return nil
	}
	d, dropped, err := logdriver.Open(*s.cfg.Log, factories)
	if err != nil {
		return errors.New("failed to initialize logging driver: " + err.Error())
	}
	s.log, s.dropped = d, dropped
	return nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// cleanupFailedCreate removes whatever a failed create left: runtime state,
// sockets, pipes.
func (s *shim) cleanupFailedCreate() {
	if s.devNull != nil {
		s.runc(nil, "delete", "--force", s.cfg.ID)
	}
	for _, o := range s.outputs {
		o.f.Close()
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
	if s.log != nil {
		s.log.Close()
	}
	os.Remove(s.path(proto.SocketFile))
}

// destroy kills a created container that nobody will manage and exits.
func (s *shim) destroy() {
	s.reaper.signal(s.initPid, syscall.SIGKILL)
	s.released.Do(func() { close(s.release) })
	<-s.exited
	os.Remove(s.path(proto.SocketFile))
}

func (s *shim) listen() error {
	p := s.path(proto.SocketFile)
	if len(p) > proto.MaxSocketPath {
		return errors.New("socket path too long: " + p)
	}
	os.Remove(p)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return err
	}
	l.SetUnlinkOnClose(false)
	s.listener = l
	return nil
}

func (s *shim) start() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	if status != proto.StatusCreated {
		return kindError(proto.KindConflict, "container is "+status)
	}
	s.waitCapture() // it reads the init's seccomp filters: before it runs anything
	if started, err := s.startByFifo(); err != nil {
		return err
	} else if !started {
		if err := s.runc(nil, "start", s.cfg.ID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.status == proto.StatusCreated {
		s.status = proto.StatusRunning
	}
	s.mu.Unlock()
	s.armSleep()
	return nil
}

// initExited runs when the container's init exits: it drains the output,
// records the exit, tells the waiters, deletes the runtime state, and exits
// the shim once berthd releases it (or the grace period ends). The waiters
// hear of the exit before the runtime's delete (a runc process, ~20 ms, where
// deleteByState cannot do it), so berthd's teardown overlaps it; Release
// waits for it (releasable), and berthd releases before it starts the same
// container again.
func (s *shim) initExited(ws syscall.WaitStatus) {
	exit := &proto.Exit{ExitCode: exitCode(ws), ExitedAt: time.Now().UTC()}
	// after a sleep being attempted has given up: the copiers run again
	s.sleep.mu.Lock()
	s.sleep.exiting = true
	s.sleep.mu.Unlock()
	s.drainOutputs(2 * time.Second)
	exit.OOMKilled = oomKilled(s.oomFile)
	s.log.Close()
	exit.LogDropped = s.dropped()
	if err := writeExit(s.path(proto.ExitFile), exit); err != nil {
		os.Stderr.WriteString("berth-shim: write exit status: " + err.Error() + "\n")
	}
	s.hub.closeAll()

	s.mu.Lock()
	s.status, s.exit = proto.StatusStopped, exit
	if s.stdin != nil && s.stdin != s.master {
		s.stdin.Close()
	}
	s.stdin = nil
	waiters := s.waiters
	s.waiters = nil
	s.mu.Unlock()
	for c := range waiters {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		respond(c, proto.Response{Status: proto.StatusStopped, Pid: s.initPid, Exit: exit})
		c.Close()
	}
	s.deleteRuntimeState()
	close(s.exited)

	t := time.NewTimer(s.cfg.ExitGrace)
	select {
	case <-s.release:
	case <-t.C:
	}
	if s.listener != nil {
		s.listener.Close()
	}
	os.Remove(s.path(proto.SocketFile))
	s.hub.wait(time.Second)
	os.Exit(0)
}

// drainOutputs waits for the output copiers to read to EOF. A process that
// escaped the container's pid namespace may hold the pipe open forever, so
// the wait is bounded; then the read ends are closed.
func (s *shim) drainOutputs(limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for _, o := range s.outputs {
		select {
		case <-o.done:
		case <-t.C:
		}
	}
	for _, o := range s.outputs {
		o.f.Close()
		<-o.done
	}
}

func writeExit(path string, exit *proto.Exit) error {
	b, err := json.Marshal(exit)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// memCgroupFile finds the file that counts OOM kills in the container's
// memory cgroup: memory.oom_control (cgroup v1, "oom_kill N", Linux 4.13+)
// or memory.events (cgroup v2). Read at exit, before runc delete removes it.
func memCgroupFile(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control")
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return filepath.Join("/sys/fs/cgroup", parts[2], "memory.events")
			}
		}
	}
	return ""
}

func oomKilled(path string) bool {
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("oom_kill ")); ok {
			n, _ := strconv.Atoi(string(bytes.TrimSpace(v)))
			return n > 0
		}
	}
	return false
}

// lookPath finds name on $PATH (ForkExec wants a path; os/exec is too big
// for what it would do here).
func lookPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// kindErr is an error with a protocol error kind.
type kindErr struct{ kind, msg string }

func (e *kindErr) Error() string { return e.msg }

func kindError(kind, msg string) error { return &kindErr{kind, msg} }
