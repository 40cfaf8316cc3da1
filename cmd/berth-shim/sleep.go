package main

// A quiet container's monitor sleeps: once nothing has happened for a while
// (no output, no request; nothing attached, no exec), the shim executes
// berth-shim-sleep (cmd/berth-shim-sleep, a few pages of C) in its own
// process, handing it the descriptors that can need the shim. The process,
// its children (the container's init), the subreaper bit and those
// descriptors stay; the Go runtime's ~1 MB goes. berth-shim-sleep waits
// until one of them is readable or hung up (output to log, a connection, a
// client gone, the init's exit) and executes the shim again, which rebuilds
// itself from <state>/sleep.json (wake). Nothing is read in between, so
// nothing is lost.

import (
	"encoding/json"
	"errors"
	"fmt"
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

const (
	// SleepBinary is looked for next to the shim.
	SleepBinary = "berth-shim-sleep"
	// SleepAfterEnv, in the shim's environment, sets how long a container
	// must be quiet before its monitor sleeps (a Go duration; "off" never).
	SleepAfterEnv = "BERTH_SHIM_SLEEP_AFTER"
	sleepEnv      = "_BERTH_SHIM_SLEEP"
	wakeEnv       = "_BERTH_SHIM_WAKE"
	connsEnv      = "_BERTH_SHIM_CONNS"   // accepted by the sleeper, requests unread
	waitersEnv    = "_BERTH_SHIM_WAITERS" // waits the sleeper took
	sleepFile     = "sleep.json"

	defaultSleepAfter = time.Second
	// A shim woken within backoffWindow times its quiet time of falling
	// asleep (a container that writes now and then) waits twice as long
	// before the next sleep, up to maxSleepAfter times: a chatty container
	// keeps its Go monitor.
	backoffWindow = 10
	maxSleepAfter = 60
)

// sleepState is <state>/sleep.json: the shim as it fell asleep. Numbers
// are descriptors, kept open across both executions.
type sleepState struct {
	InitPid  int
	Listener int
	Waiters  []int `json:"-"` // held at the sleep: given to the sleeper, which hands back those still held
	Outputs  []sleepOutput
	Stdin    int // -1: none; == Master for a terminal's
	Master   int // -1: none
	OOMFile  string
	Fast     *sleepFast `json:",omitempty"`
	Close    []int      // the sleeper's own: the binary, the init's pidfd
	After    time.Duration
	SleptAt  time.Time
}

type sleepOutput struct {
	FD      int
	Type    byte
	Pending []byte `json:",omitempty"` // a partial line, not logged yet
}

type sleepFast struct {
	Helper string
	PidFD  int
	Cgroup []byte
	Filter string
	Proven bool // the runtime's version was checked
}

// sleeper decides when the shim may sleep and puts it to sleep.
type sleeper struct {
	after    time.Duration // 0: never
	binary   string
	last     atomic.Int64 // unix nanoseconds of the last activity
	busy     atomic.Int32 // requests being served (a held Wait is not one)
	mu       sync.Mutex   // one attempt at a time; initExited takes it too
	exiting  bool
	stopping atomic.Bool  // the accept loop and copiers park while set
	parked   chan *output // who parked (nil: the accept loop)
	resume   chan struct{}
	timer    *time.Timer
}

func newSleeper() *sleeper {
	sl := &sleeper{after: sleepAfter()}
	if self, err := os.Executable(); err == nil {
		sl.binary = filepath.Join(filepath.Dir(self), SleepBinary)
		if fi, err := os.Stat(sl.binary); err != nil || !fi.Mode().IsRegular() {
			sl.after = 0
		}
	}
	return sl
}

func sleepAfter() time.Duration {
	v := os.Getenv(SleepAfterEnv)
	if v == "" {
		return defaultSleepAfter
	}
	if v == "off" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return defaultSleepAfter
	}
	return d
}

// touch records activity.
func (sl *sleeper) touch() { sl.last.Store(time.Now().UnixNano()) }

// arm starts the quiet-time check (once the container runs).
func (s *shim) armSleep() {
	sl := s.sleep
	if sl.after == 0 || !sleepableLog(s.cfg) {
		return // a driver that must stay connected keeps the monitor awake
	}
	sl.touch()
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.timer == nil {
		sl.timer = time.AfterFunc(sl.after, s.trySleep)
	}
}

// trySleep sleeps if the container has been quiet long enough, or checks
// again when it may have been.
func (s *shim) trySleep() {
	sl := s.sleep
	sl.mu.Lock()
	timer := sl.timer
	sl.mu.Unlock()
	quiet := time.Since(time.Unix(0, sl.last.Load()))
	if quiet < sl.after {
		timer.Reset(sl.after - quiet)
		return
	}
	err := s.sleepNow()
	if err == nil || errors.Is(err, errExiting) {
		return
	}
	if !errors.Is(err, errBusy) {
		os.Stderr.WriteString("berth-shim: sleep: " + err.Error() + "\n")
	}
	timer.Reset(sl.after)
}

var (
	errBusy    = errors.New("busy")
	errExiting = errors.New("the container is exiting")
)

// mayRest says why the shim cannot sleep now (nil: it can). s.mu is held.
func (s *shim) mayRest() error {
	switch {
	case s.status != proto.StatusRunning || s.exit != nil:
		return errExiting
	case s.sleep.busy.Load() != 0 || len(s.execs) != 0 || s.hub.attached():
		return errBusy
	}
	select {
	case <-s.captured:
	default:
		return errBusy
	}
	return nil
}

// sleepableLog: a driver the woken shim can open again as it was (a local
// file or nothing), without a queue of its own.
func sleepableLog(cfg *proto.Config) bool {
	if cfg.Log == nil {
		return true
	}
	switch cfg.Log.Driver {
	case "none", "json-file", "local":
		return cfg.Log.Opts["mode"] != logdriver.ModeNonBlocking
	}
	return false
}

// sleepNow parks the accept loop and the output copiers, and executes
// berth-shim-sleep. It returns only if the shim stays awake.
func (s *shim) sleepNow() error {
	sl := s.sleep
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.exiting {
		return errExiting
	}
	s.mu.Lock()
	err := s.mayRest()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	live := s.liveOutputs()
	sl.parked = make(chan *output, len(live)+1)
	sl.resume = make(chan struct{})
	sl.stopping.Store(true)
	past := time.Unix(1, 0)
	if err := s.listener.SetDeadline(past); err != nil {
		return s.wakeAgain(nil, err)
	}
	for _, o := range live {
		if err := o.f.SetReadDeadline(past); err != nil {
			// the ones set so far park, and are resumed
			return s.wakeAgain(nil, err)
		}
	}
	waitParked(sl.parked, live)
	// Parked: nothing reads or accepts now. Anything that arrived in the
	// meantime shows in the state again.
	s.mu.Lock()
	err = s.mayRest()
	if err == nil && len(s.liveOutputs()) != len(live) {
		err = errBusy
	}
	st := sleepState{InitPid: s.initPid, Stdin: -1, Master: -1, OOMFile: s.oomFile, After: sl.after, SleptAt: time.Now()}
	var kept []int
	if err == nil {
		kept, err = s.collectFDs(&st, live)
	}
	s.mu.Unlock()
	if err == nil {
		err = s.execSleeper(&st)
	}
	return s.wakeAgain(kept, err)
}

// wakeAgain undoes a sleep attempt: the descriptors it kept are
// close-on-exec again, the parked goroutines go on.
func (s *shim) wakeAgain(kept []int, why error) error {
	sl := s.sleep
	for _, fd := range kept {
		syscall.CloseOnExec(fd)
	}
	s.listener.SetDeadline(time.Time{})
	for _, o := range s.outputs {
		o.f.SetReadDeadline(time.Time{})
	}
	sl.stopping.Store(false)
	close(sl.resume)
	return why
}

// park is called by the accept loop (o nil) and the copiers when their
// read ran into a deadline (only a sleep sets one): while a sleep is being
// attempted it waits until the shim stays awake; after, the caller reads
// again (wakeAgain clears the deadlines before the attempt ends).
func (sl *sleeper) park(o *output) {
	if !sl.stopping.Load() {
		return
	}
	resume := sl.resume
	sl.parked <- o
	<-resume
}

// waitParked returns once the accept loop and every output's copier have
// parked, or the copier ended (its output's end: the sleep then gives up).
func waitParked(parked <-chan *output, live []*output) {
	pending := make(map[*output]bool, len(live))
	for _, o := range live {
		pending[o] = true
	}
	accepting := true
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for o := range pending {
			select {
			case <-o.done:
				delete(pending, o)
			default:
			}
		}
		if !accepting && len(pending) == 0 {
			return
		}
		select {
		case o := <-parked:
			if o == nil {
				accepting = false
			} else {
				delete(pending, o)
			}
		case <-tick.C: // an output's end is seen by polling its done
		}
	}
}

// liveOutputs are the outputs not yet at their end.
func (s *shim) liveOutputs() []*output {
	var live []*output
	for _, o := range s.outputs {
		select {
		case <-o.done:
		default:
			live = append(live, o)
		}
	}
	return live
}

// collectFDs fills st with the descriptors to keep, and clears their
// close-on-exec. s.mu is held.
func (s *shim) collectFDs(st *sleepState, live []*output) ([]int, error) {
	var keep []int
	err := s.keepFDs(st, live, &keep)
	if err == nil {
		for _, fd := range keep {
			if err = clearCloexec(fd); err != nil {
				break
			}
		}
	}
	return keep, err
}

func (s *shim) keepFDs(st *sleepState, live []*output, keepp *[]int) error {
	get := func(c syscall.Conn) (int, error) {
		rc, err := c.SyscallConn()
		if err != nil {
			return -1, err
		}
		fd := -1
		if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
			return -1, err
		}
		*keepp = append(*keepp, fd)
		return fd, nil
	}
	var err error
	if st.Listener, err = get(s.listener); err != nil {
		return err
	}
	for c := range s.waiters {
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return errors.New("a waiter that is not a unix connection")
		}
		fd, err := get(uc)
		if err != nil {
			return err
		}
		st.Waiters = append(st.Waiters, fd)
	}
	for _, o := range live {
		fd, err := get(o.f)
		if err != nil {
			return err
		}
		st.Outputs = append(st.Outputs, sleepOutput{FD: fd, Type: o.typ, Pending: o.lw.Pending()})
	}
	if s.master != nil {
		if st.Master, err = get(s.master); err != nil {
			return err
		}
	}
	if s.stdin != nil {
		if s.stdin == s.master {
			st.Stdin = st.Master
		} else if st.Stdin, err = get(s.stdin); err != nil {
			return err
		}
	}
	// the fast path as the first exec decided it (none: the woken shim
	// need not decide again)
	if fc := s.fastCap; fc != nil && !(s.fastDone.Load() && s.fast == nil) {
		fd, err := get(fc.pidfd)
		if err != nil {
			return err
		}
		st.Fast = &sleepFast{Helper: fc.helper, PidFD: fd, Cgroup: fc.cgroup, Filter: fc.filter, Proven: fc.proven || (s.fastDone.Load() && s.fast != nil)}
	}
	return nil
}

func clearCloexec(fd int) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0)
	if e != 0 {
		return e
	}
	return nil
}

// execSleeper writes sleep.json and becomes berth-shim-sleep. The reaper's
// lock is held across the exec, so the init cannot be reaped (and its
// status lost) in between: if it exits, its pidfd wakes the sleeper.
func (s *shim) execSleeper(st *sleepState) error {
	exe, err := syscall.Open("/proc/self/exe", oPath, 0)
	if err != nil {
		return fmt.Errorf("open the shim's binary: %w", err)
	}
	closeFDs := func() { syscall.Close(exe) }
	st.Close = []int{exe}
	r := s.reaper
	r.mu.Lock()
	if _, ok := r.onExit[s.initPid]; !ok {
		r.mu.Unlock()
		closeFDs()
		return errExiting
	}
	pidfd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(s.initPid), 0, 0)
	if errno != 0 {
		r.mu.Unlock()
		closeFDs()
		return fmt.Errorf("pidfd_open: %w", errno)
	}
	closeFDs = func() { syscall.Close(exe); syscall.Close(int(pidfd)) }
	st.Close = append(st.Close, int(pidfd))
	if err := clearCloexec(int(pidfd)); err != nil { // pidfd_open sets it
		r.mu.Unlock()
		closeFDs()
		return err
	}
	// berth-shim-sleep's order: the binary, the listener, the init's pid,
	// the held waits (counted), then what it watches. The waits it still
	// holds come back in waitersEnv (st.Waiters is not read at the wake:
	// the sleeper closes those whose client leaves).
	watch := []int{exe, st.Listener, s.initPid, len(st.Waiters)}
	watch = append(watch, st.Waiters...)
	watch = append(watch, int(pidfd))
	for _, o := range st.Outputs {
		watch = append(watch, o.FD)
	}
	err = writeSleepState(s.path(sleepFile), st)
	if err == nil {
		var b strings.Builder
		for i, fd := range watch {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(fd))
		}
		env := append(withoutEnv(os.Environ(), wakeEnv, sleepEnv, connsEnv, waitersEnv), sleepEnv+"="+b.String())
		err = syscall.Exec(s.sleep.binary, []string{os.Args[0], s.dir}, env)
		os.Remove(s.path(sleepFile))
	}
	r.mu.Unlock()
	closeFDs()
	return fmt.Errorf("execute %s: %w", SleepBinary, err)
}

func writeSleepState(path string, st *sleepState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, e := range env {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(e, n+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

// wake rebuilds the shim from sleep.json after berth-shim-sleep executed
// it again, and serves as before.
func wake(stateDir string) int {
	conns, waiters := envFDs(connsEnv), envFDs(waitersEnv)
	for _, e := range []string{wakeEnv, connsEnv, waitersEnv} {
		os.Unsetenv(e)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, sleepFile))
	if err != nil {
		os.Stderr.WriteString("berth-shim: wake: " + err.Error() + "\n")
		return 1
	}
	var st sleepState
	if err := json.Unmarshal(b, &st); err != nil {
		os.Stderr.WriteString("berth-shim: wake: " + sleepFile + ": " + err.Error() + "\n")
		return 1
	}
	for _, fd := range st.Close {
		syscall.Close(fd)
	}
	if err := setSubreaper(); err != nil {
		os.Stderr.WriteString("berth-shim: wake: set child subreaper: " + err.Error() + "\n")
	}
	sigc := make(chan os.Signal, 32)
	notifyChildren(sigc)
	cfg, err := loadConfig(stateDir)
	if err != nil {
		os.Stderr.WriteString("berth-shim: wake: " + err.Error() + "\n")
		return 1
	}
	s := newShim(stateDir, cfg)
	if err := s.restore(&st); err != nil {
		os.Stderr.WriteString("berth-shim: wake: " + err.Error() + "\n")
		return 1
	}
	os.Remove(filepath.Join(stateDir, sleepFile))
	// the waits the sleeper holds (ours from before the sleep and those it
	// took): before the init's exit can be seen, which answers them
	for _, fd := range waiters {
		if c := fileConn(fd); c != nil {
			s.holdNewWaiter(c)
		}
	}
	for _, o := range s.outputs {
		go s.copyOutput(o)
	}
	s.sleep.after = nextSleepAfter(st.After, st.SleptAt, s.sleep.after)
	go s.reaper.loop(sigc)
	s.reaper.watch(s.initPid, s.initExited)
	s.reaper.reapAll() // an exit while asleep sent its SIGCHLD to nobody
	s.armSleep()
	// requests the sleeper left unread
	for _, fd := range conns {
		if c := fileConn(fd); c != nil {
			s.serveConn(c)
		}
	}
	s.serve()
	select {} // initExited exits the process
}

// nextSleepAfter backs off for a container that wakes its monitor soon
// after each sleep.
func nextSleepAfter(prev time.Duration, sleptAt time.Time, base time.Duration) time.Duration {
	if base == 0 || prev == 0 {
		return base
	}
	if time.Since(sleptAt) < backoffWindow*base {
		return min(2*prev, maxSleepAfter*base)
	}
	return base
}

// restore takes the descriptors back.
func (s *shim) restore(st *sleepState) error {
	file := inheritFile
	var err error
	if s.devNull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
		return err
	}
	if err := s.openLog(); err != nil {
		return err
	}
	s.initPid, s.oomFile, s.status = st.InitPid, st.OOMFile, proto.StatusRunning
	lf := file(st.Listener, "shim.sock")
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	s.listener = l.(*net.UnixListener)
	s.listener.SetUnlinkOnClose(false)
	if st.Master >= 0 {
		s.master = file(st.Master, "pty-master")
	}
	if st.Stdin >= 0 {
		if st.Stdin == st.Master {
			s.stdin = s.master
		} else {
			s.stdin = file(st.Stdin, "stdin")
		}
	}
	for _, o := range st.Outputs {
		name := "stdout" // a terminal's one output too
		if o.Type == proto.FrameStderr {
			name = "stderr"
		}
		f := s.master
		if f == nil || o.FD != st.Master {
			f = file(o.FD, name)
		}
		lw := logfile.NewLineWriter(&logdriver.Appender{D: s.log}, name)
		lw.Resume(o.Pending)
		s.outputs = append(s.outputs, &output{f: f, typ: o.Type, done: make(chan struct{}), lw: lw})
	}
	s.captured = make(chan struct{})
	if st.Fast != nil {
		syscall.CloseOnExec(st.Fast.PidFD)
		s.fastCap = &fastCapture{helper: st.Fast.Helper, pidfd: os.NewFile(uintptr(st.Fast.PidFD), "pidfd"), cgroup: st.Fast.Cgroup, filter: st.Fast.Filter, proven: st.Fast.Proven}
	}
	close(s.captured)
	return nil // the waits: wake takes them from the sleeper's list
}

// inheritFile takes back a descriptor kept across the executions:
// close-on-exec again, and non-blocking, served by the runtime's poller.
func inheritFile(fd int, name string) *os.File {
	syscall.CloseOnExec(fd)
	syscall.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// fileConn makes a unix connection of an inherited descriptor (nil: it
// is not one any more).
func fileConn(fd int) *net.UnixConn {
	f := inheritFile(fd, "conn")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil
	}
	return uc
}

// holdNewWaiter holds a Wait taken over from a sleep.
func (s *shim) holdNewWaiter(c *net.UnixConn) {
	s.mu.Lock()
	s.waiters[c] = struct{}{}
	s.mu.Unlock()
	go s.holdWaiter(c)
}

// envFDs reads a list of descriptors the sleeper passed.
func envFDs(name string) []int {
	var fds []int
	for _, f := range strings.Fields(os.Getenv(name)) {
		if fd, err := strconv.Atoi(f); err == nil && fd > 2 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// oPath is O_PATH (the same on every architecture berth builds for).
const oPath = 0x200000
