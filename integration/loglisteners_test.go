package integration

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// msgSink collects what a log server received, one message each.
type msgSink struct {
	mu   sync.Mutex
	msgs []string
	more chan struct{}
}

func newSink() *msgSink { return &msgSink{more: make(chan struct{}, 1)} }

func (s *msgSink) add(m string) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// wait returns the messages once there are at least n (failing after 30s).
func (s *msgSink) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.msgs...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("got %d messages, want %d: %q", len(got), n, got)
		}
	}
}

// syslogServer listens on network ("udp", "tcp" on 127.0.0.1, "unix",
// "unixgram" in a temp dir) and collects newline-framed messages. It
// returns the address to give syslog-address.
func syslogServer(t *testing.T, network string) (string, *msgSink) {
	t.Helper()
	sink := newSink()
	switch network {
	case "udp", "unixgram":
		var pc net.PacketConn
		var err error
		addr := "127.0.0.1:0"
		if network == "unixgram" {
			addr = filepath.Join(shortTempDir(t), "log.sock")
		}
		pc, err = net.ListenPacket(network, addr)
		assert.NilError(t, err)
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 64*1024)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				sink.add(strings.TrimSuffix(string(buf[:n]), "\n"))
			}
		}()
		return network + "://" + pc.LocalAddr().String(), sink
	default:
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(shortTempDir(t), "log.sock")
		}
		l, err := net.Listen(network, addr)
		assert.NilError(t, err)
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						sink.add(sc.Text())
					}
				}()
			}
		}()
		return network + "://" + l.Addr().String(), sink
	}
}

// stalledServer accepts connections on a unix socket and never reads: a
// log server that hangs.
func stalledServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "stalled.sock")
	l, err := net.Listen("unix", path)
	assert.NilError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return path
}

// deadAddr is a 127.0.0.1 TCP address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// shortTempDir is a temp dir whose paths fit a unix socket.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bl")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
