// Command berth-shim is berth's per-container monitor. berthd starts one per
// container as `berth-shim <state-dir>`, in a new session and with
// _BERTH_SHIM_DAEMON=1 (started otherwise, it re-executes itself so), and
// it outlives berthd; it creates the
// container with the OCI runtime, owns its stdio, writes its log through the
// container's logging driver (package runtime/logdriver),
// runs its execs, records its exit status in <state-dir>/exit.json and serves
// berthd on <state-dir>/shim.sock (protocol: package runtime/shim/proto).
//
// While its container is quiet it sleeps as berth-shim-sleep, a few pages of
// C in the same process, and is executed again when it is needed (sleep.go).
//
// It is kept small on purpose (one runs per container): the standard library
// and small libraries only (the drivers that need crypto/tls are in the
// berth-shim-remote build, tag berth_remotelog), no os/exec, one GOMAXPROCS,
// a low GC target.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/shim/proto"
)

const daemonEnv = proto.DaemonEnv

// No heap profiling: its bucket table costs pages in every shim.
var _ = func() int { runtime.MemProfileRate = 0; return 0 }()

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: berth-shim <state-dir>")
		os.Exit(2)
	}
	if os.Getenv(daemonEnv) == "" {
		os.Exit(relaunch())
	}
	// A collection costs a shim more (GC metadata it touches) than its
	// garbage, which is little: the log path allocates nothing per line.
	// Bursts are trimmed when idle (trimLater).
	debug.SetGCPercent(50)
	if os.Getenv(wakeEnv) == "1" {
		os.Exit(wake(os.Args[1]))
	}
	os.Exit(run(os.Args[1]))
}

// relaunch starts the real shim in a new session and returns at once, so the
// shim is re-parented to init (or the nearest subreaper) and never becomes a
// zombie of berthd. fds 0-3 (stdio and the ready pipe) are passed through.
func relaunch() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		return 1
	}
	env := append(os.Environ(), daemonEnv+"=1", "GOMAXPROCS=1")
	// Whatever berthd leaked to us without close-on-exec (fds 4 and up)
	// must not be held by the shim for the container's life.
	closeRangeCloexec(4)
	_, err = syscall.ForkExec(self, os.Args, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2, 3},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		return 1
	}
	return 0
}

func run(stateDir string) int {
	// Our fd 3 came without close-on-exec; runc and the container must not
	// inherit it (the launcher reads it to EOF). Nor anything else a
	// parent leaked (fds 4 and up).
	closeRangeCloexec(4)
	syscall.CloseOnExec(3)
	ready := os.NewFile(3, "ready")
	if err := setSubreaper(); err != nil {
		report(ready, proto.Ready{Error: "berth-shim: set child subreaper: " + err.Error()})
		return 1
	}
	sigc := make(chan os.Signal, 32)
	notifyChildren(sigc)
	// Paths in the config are absolute (Launch makes them so): leave
	// berthd's working directory, so the shim pins no mount.
	os.Chdir("/")
	if os.Getenv(proto.HoldEnv) == "1" && !hold() {
		ready.Close()
		return 0 // the start was given up before we made anything
	}
	cfg, err := loadConfig(stateDir)
	if err != nil {
		report(ready, proto.Ready{Error: err.Error()})
		return 1
	}
	s := newShim(stateDir, cfg)
	go s.reaper.loop(sigc)

	if err := s.create(); err != nil {
		s.cleanupFailedCreate()
		report(ready, proto.Ready{Error: err.Error(), ExitCode: proto.ExitCodeFor(err.Error())})
		return 1
	}
	if err := s.listen(); err != nil {
		s.destroy()
		report(ready, proto.Ready{Error: "berth-shim: " + err.Error()})
		return 1
	}
	if err := report(ready, proto.Ready{Pid: s.initPid, ShimPid: os.Getpid()}); err != nil {
		// berthd gave up on us (its Launch was canceled): leave nothing behind.
		s.destroy()
		return 1
	}
	s.serve()
	select {} // initExited exits the process
}

// notifyChildren sends SIGCHLD to c (the reaper) and ignores the signals a
// session's end or a terminal would send.
func notifyChildren(c chan<- os.Signal) {
	signal.Notify(c, syscall.SIGCHLD)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
}

// hold waits for berthd's go (proto.HoldFD): true once the Config is
// written, false when berthd gave the start up or is gone.
func hold() bool {
	f := os.NewFile(proto.HoldFD, "hold")
	defer f.Close()
	var b [1]byte
	for {
		n, err := f.Read(b[:])
		if n == 1 {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func report(ready *os.File, r proto.Ready) error {
	b, _ := json.Marshal(r)
	_, err := ready.Write(append(b, '\n'))
	ready.Close()
	return err
}

func loadConfig(stateDir string) (*proto.Config, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, proto.ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("berth-shim: %w", err)
	}
	var cfg proto.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("berth-shim: %s: %w", proto.ConfigFile, err)
	}
	if cfg.RuntimeBinary == "" {
		cfg.RuntimeBinary = "runc"
	}
	if cfg.ExitGrace <= 0 {
		cfg.ExitGrace = 5 * time.Second
	}
	return &cfg, nil
}

func closeRangeCloexec(from uint) {
	const sysCloseRange = 436 // same number on every Linux architecture
	const closeRangeCloexec = 1 << 2
	if _, _, e := syscall.RawSyscall(sysCloseRange, uintptr(from), ^uintptr(0), closeRangeCloexec); e == 0 {
		return
	}
	// Kernels before 5.11: walk /proc/self/fd.
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= int(from) {
			syscall.CloseOnExec(fd)
		}
	}
}

func setSubreaper() error {
	const prSetChildSubreaper = 36
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	if e != 0 {
		return e
	}
	return nil
}
