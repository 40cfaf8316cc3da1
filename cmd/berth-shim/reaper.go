package main

import (
	"encoding/binary"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// reaper reaps every child of the shim (it is a subreaper, so the container's
// init and exec processes become its children when runc exits) and hands
// exit statuses to whoever waits for that pid. Processes are started through
// it so no exit can be reaped before its waiter is registered.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	onExit  map[int]func(syscall.WaitStatus) // called in a new goroutine
	// While a runc create/exec is in flight, the process it starts may exit
	// (and be reaped) before we learn its pid from the pid file: keep those
	// unclaimed exits until the pid is claimed.
	pending int
	early   map[int]syscall.WaitStatus
}

func newReaper() *reaper {
	return &reaper{
		waiters: map[int]chan syscall.WaitStatus{},
		onExit:  map[int]func(syscall.WaitStatus){},
		early:   map[int]syscall.WaitStatus{},
	}
}

func (r *reaper) loop(sigc <-chan os.Signal) {
	for range sigc {
		r.reapAll()
	}
}

func (r *reaper) reapAll() {
	for {
		// Peek first (WNOWAIT) and reap under the lock, so that a pid whose
		// waiter is still registered is never a reaped, reusable pid:
		// signal() relies on that.
		pid := peekExited()
		if pid <= 0 {
			return
		}
		r.mu.Lock()
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			r.mu.Unlock()
			continue
		}
		if got != pid || err != nil {
			r.mu.Unlock()
			return // cannot happen after a peek; never spin on it
		}
		if c, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			c <- ws
		} else if f, ok := r.onExit[pid]; ok {
			delete(r.onExit, pid)
			go f(ws)
		} else if r.pending > 0 {
			r.early[pid] = ws
		}
		r.mu.Unlock()
	}
}

// peekExited returns the pid of an exited child without reaping it, or 0.
func peekExited() int {
	const (
		pAll    = 0
		wExited = 4
		wNowait = 0x1000000
	)
	var info [128]byte // siginfo_t; si_pid is at offset 16 on linux/amd64 and arm64
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pAll, 0, uintptr(unsafe.Pointer(&info[0])), wExited|syscall.WNOHANG|wNowait, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0
		}
		return int(int32(binary.NativeEndian.Uint32(info[16:20])))
	}
}

// signal sends sig to pid if pid is a live (unreaped) process we wait for.
func (r *reaper) signal(pid int, sig syscall.Signal) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, waited := r.waiters[pid]
	_, watched := r.onExit[pid]
	if !waited && !watched {
		return false, nil
	}
	return true, syscall.Kill(pid, sig)
}

// start starts argv[0] with the given stdio fds and returns its pid and a
// channel that receives its wait status.
func (r *reaper) start(argv []string, files []uintptr, env []string) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		return 0, nil, err
	}
	c := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = c
	return pid, c, nil
}

// startFile is start with a path to execute other than argv[0].
func (r *reaper) startFile(path string, argv []string, files []uintptr) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Files: files})
	if err != nil {
		return 0, nil, err
	}
	c := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = c
	return pid, c, nil
}

// beginPending and endPending bracket a runc call that starts a process whose
// pid is claimed afterwards.
func (r *reaper) beginPending() {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
}

func (r *reaper) endPending() {
	r.mu.Lock()
	r.pending--
	if r.pending == 0 {
		clear(r.early)
	}
	r.mu.Unlock()
}

// claim returns a channel for the exit of pid, which was started by runc.
func (r *reaper) claim(pid int) <-chan syscall.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(chan syscall.WaitStatus, 1)
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		c <- ws
		return c
	}
	r.waiters[pid] = c
	return c
}

// watch calls f in a new goroutine when pid, started by runc, exits: no
// goroutine waits meanwhile.
func (r *reaper) watch(pid int, f func(syscall.WaitStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		go f(ws)
		return
	}
	r.onExit[pid] = f
}

// exitCode is Docker's exit code for a wait status: the status, or 128+signal.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
