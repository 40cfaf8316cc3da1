package httputil

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	assert.NilError(t, err)
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		assert.NilError(t, err)
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// waitRead returns once the peer has read what was written, not before.
func TestWaitReadWaitsForThePeer(t *testing.T) {
	srv, cli := unixPair(t)
	for round := range 3 {
		_, err := srv.Write([]byte("HTTP/1.1 101 UPGRADED\r\n\r\n"))
		assert.NilError(t, err)
		returned := make(chan struct{})
		go func() { waitRead(srv, time.Minute); close(returned) }()
		select {
		case <-returned:
			t.Fatalf("round %d: returned while the answer was unread", round)
		case <-time.After(50 * time.Millisecond):
		}
		buf := make([]byte, 64)
		n, err := cli.Read(buf)
		assert.NilError(t, err)
		assert.Equal(t, string(buf[:n]), "HTTP/1.1 101 UPGRADED\r\n\r\n")
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: did not return once the answer was read", round)
		}
	}
}

// A client that never reads costs the bound, no more.
func TestWaitReadIsBounded(t *testing.T) {
	srv, _ := unixPair(t)
	_, err := srv.Write([]byte("unread"))
	assert.NilError(t, err)
	start := time.Now()
	waitRead(srv, 100*time.Millisecond)
	assert.Assert(t, time.Since(start) >= 100*time.Millisecond)
	assert.Assert(t, time.Since(start) < 5*time.Second)
	// not a unix socket: nothing to wait for
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	waitRead(a, time.Minute)
}
