package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
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

// fluentEvent is one event of the fluentd forward protocol.
type fluentEvent struct {
	Tag    string
	Time   time.Time
	Record map[string]string
}

// fluentdServer accepts forward-protocol connections on 127.0.0.1 and
// collects the events ([tag, time, record] in msgpack; time an integer or
// an EventTime extension).
func fluentdServer(t *testing.T) (string, chan fluentEvent) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	events := make(chan fluentEvent, 1000)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := msgp.NewReader(c)
				for {
					v, err := r.ReadIntf()
					if err != nil {
						return
					}
					arr, ok := v.([]interface{})
					if !ok || len(arr) < 3 {
						continue
					}
					ev := fluentEvent{Record: map[string]string{}}
					ev.Tag, _ = arr[0].(string)
					switch tm := arr[1].(type) {
					case int64:
						ev.Time = time.Unix(tm, 0)
					case uint64:
						ev.Time = time.Unix(int64(tm), 0)
					case *msgp.RawExtension:
						if len(tm.Data) == 8 {
							ev.Time = time.Unix(int64(binary.BigEndian.Uint32(tm.Data)), int64(binary.BigEndian.Uint32(tm.Data[4:])))
						}
					}
					if rec, ok := arr[2].(map[string]interface{}); ok {
						for k, v := range rec {
							switch s := v.(type) {
							case string:
								ev.Record[k] = s
							case []byte:
								ev.Record[k] = string(s)
							}
						}
					}
					events <- ev
				}
			}()
		}
	}()
	return l.Addr().String(), events
}

// gelfServer listens for GELF on 127.0.0.1 (udp: one compressed or plain
// datagram per message; tcp: null-terminated JSON) and collects messages.
func gelfServer(t *testing.T, network string) (string, chan map[string]any) {
	t.Helper()
	msgs := make(chan map[string]any, 1000)
	decode := func(b []byte) {
		var m map[string]any
		switch {
		case len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b:
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return
			}
			b, _ = io.ReadAll(zr)
		case len(b) > 2 && b[0] == 0x78:
			zr, err := zlib.NewReader(bytes.NewReader(b))
			if err != nil {
				return
			}
			b, _ = io.ReadAll(zr)
		}
		if json.Unmarshal(b, &m) == nil {
			msgs <- m
		}
	}
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		assert.NilError(t, err)
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 64*1024)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				decode(append([]byte(nil), buf[:n]...))
			}
		}()
		return "udp://" + pc.LocalAddr().String(), msgs
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
				br := bufio.NewReader(c)
				for {
					b, err := br.ReadBytes(0)
					if err != nil {
						return
					}
					decode(b[:len(b)-1])
				}
			}()
		}
	}()
	return "tcp://" + l.Addr().String(), msgs
}
