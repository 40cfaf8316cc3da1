package main

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// consoleSocket is the --console-socket runc sends a pty master to.
type consoleSocket struct {
	path string
	l    *net.UnixListener
	got  chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func newConsoleSocket(path string) (*consoleSocket, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	c := &consoleSocket{path: path, l: l, got: make(chan consoleResult, 1)}
	go func() { c.got <- c.accept() }()
	return c, nil
}

func (c *consoleSocket) accept() consoleResult {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return consoleResult{err: err}
	}
	defer conn.Close()
	f, err := recvFd(conn)
	return consoleResult{f: f, err: err}
}

// recvFd receives the one fd (a pty master) a runtime sends on conn.
func recvFd(conn *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 128)
	oob := make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("console socket: no control message")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, errors.New("console socket: expected one fd")
	}
	syscall.CloseOnExec(fds[0])
	// Non-blocking, the master is served by the runtime poller.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// master returns the received pty master once the runtime call that was
// given this socket has succeeded. It closes the socket.
func (c *consoleSocket) master() (*os.File, error) {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case r := <-c.got:
		c.l.Close()
		os.Remove(c.path)
		return r.f, r.err
	case <-t.C:
		c.close()
		return nil, errors.New("console socket: runtime sent no pty master")
	}
}

// close releases the socket after a failed runtime call: it stops the
// accepting goroutine and closes a master that arrived anyway.
func (c *consoleSocket) close() {
	c.l.Close()
	os.Remove(c.path)
	if r := <-c.got; r.f != nil {
		r.f.Close()
	}
}

type winsize struct{ row, col, x, y uint16 }

func resizePty(f *os.File, h, w uint16) error {
	if f == nil {
		return errors.New("not a terminal")
	}
	ws := winsize{row: h, col: w}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
