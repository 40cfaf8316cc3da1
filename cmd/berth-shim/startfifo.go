package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// execFifo is the file in runc's state directory of a created container
// whose opening lets the init exec the container's process.
const execFifo = "exec.fifo"

// startByFifo starts the created container as runc 1.1's start does,
// without a runc process (~20 ms of every start): it opens the init's exec
// fifo for reading, which lets the init, blocked opening it for writing,
// go on; reads the byte the init writes before it execs the process; and
// removes the fifo, which makes runc see the container as running. Only for
// a runtime berthd found to be runc 1.1 (FastExec) with a known state
// directory; started false (and nothing done): use `runc start`.
func (s *shim) startByFifo() (started bool, err error) {
	if !s.cfg.FastExec || s.cfg.RuntimeRoot == "" {
		return false, nil
	}
	path := filepath.Join(s.cfg.RuntimeRoot, s.cfg.ID, execFifo)
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		return false, nil
	}
	// Non-blocking: the open does not wait for a writer and the read
	// waits in the poller. A read that finds no writer (EOF) is either
	// early (runc create has returned, the init is about to open its end)
	// or late (the init died): the init's liveness tells which.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	deadline := time.Now().Add(fifoWait)
	var b [1]byte
	for {
		n, err := f.Read(b[:])
		if n == 1 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return true, err
		}
		if live, _ := s.reaper.signal(s.initPid, 0); !live || time.Now().After(deadline) {
			return true, errors.New("container process is already dead")
		}
		time.Sleep(time.Millisecond)
	}
	// The byte is the start: the init has gone on to exec. A process that
	// exits at once can be reaped and its runtime state deleted (runc
	// delete, the fifo with it) before we get here on a busy machine.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, err
	}
	return true, nil
}

// fifoWait bounds the wait for the init to open its end of the fifo.
const fifoWait = 10 * time.Second
