package logdriver

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logfile"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		driver string
		opts   map[string]string
		err    string
	}{
		{"none", map[string]string{"anything": "goes"}, ""},
		{"json-file", map[string]string{"max-size": "1m", "max-file": "2", "tag": "x", "mode": "non-blocking", "max-buffer-size": "4m"}, ""},
		{"json-file", map[string]string{"cache-disabled": "true"}, ""},
		{"asdf", nil, "logger: no log driver named 'asdf' is registered"},
		{"json-file", map[string]string{"mode": "x"}, "logger: logging mode not supported: x"},
		{"json-file", map[string]string{"max-buffer-size": "1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{"json-file", map[string]string{"mode": "non-blocking", "max-buffer-size": "lots"}, "error parsing option max-buffer-size"},
		{"local", nil, ""},
		{"local", map[string]string{"max-size": "-1"}, "invalid value for max-size: -1"},
		{"local", map[string]string{"max-file": "1"}, "compression cannot be enabled when max file count is 1"},
		{"local", map[string]string{"max-file": "1", "compress": "false"}, ""},
		{"local", map[string]string{"syslog-address": "udp://x"}, "unknown log opt 'syslog-address' for log driver local"},
		{"syslog", map[string]string{"syslog-address": "udp://127.0.0.1", "syslog-facility": "local3", "syslog-format": "rfc5424micro", "tag": "t"}, ""},
		{"syslog", map[string]string{"syslog-address": "unix:///nonexistent/sock"}, "no such file or directory"},
		{"syslog", map[string]string{"syslog-address": "http://x"}, "unsupported scheme: 'http'"},
		{"syslog", map[string]string{"syslog-facility": "24"}, "invalid syslog facility"},
		{"syslog", map[string]string{"syslog-facility": "23"}, ""},
		{"syslog", map[string]string{"max-size": "1m"}, "unknown log opt 'max-size' for syslog log driver"},
		{"syslog", map[string]string{"cache-max-size": "1m", "cache-max-file": "2", "cache-compress": "false"}, ""},
		{"syslog", map[string]string{"cache-max-file": "x"}, "invalid value for cache-max-file: x"},
		{"fluentd", map[string]string{"fluentd-address": "tcp://127.0.0.1:24224", "fluentd-async": "true", "fluentd-buffer-limit": "8m"}, ""},
		{"fluentd", map[string]string{"fluentd-address": "ftp://x"}, "invalid fluentd-address (ftp://x): unsupported scheme: 'ftp'"},
		{"fluentd", map[string]string{"fluentd-address": "tcp://h:1/path"}, "should not contain a path element"},
		{"fluentd", map[string]string{"fluentd-async-reconnect-interval": "1ms"}, "must be between 100ms and 10s"},
		{"fluentd", map[string]string{"fluentd-max-retries": "-1"}, "invalid syntax"},
		{"fluentd", map[string]string{"fluentd-nope": "1"}, "unknown log opt 'fluentd-nope' for fluentd log driver"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:12201", "gelf-compression-type": "zlib", "gelf-compression-level": "9"}, ""},
		{"gelf", map[string]string{"gelf-address": "tcp://127.0.0.1:12201", "gelf-compression-type": "gzip"}, "compression is only supported on UDP"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:12201", "gelf-tcp-max-reconnect": "3"}, `"gelf-tcp-max-reconnect" is only valid for TCP`},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1"}, "gelf: please provide gelf-address as proto://host:port"},
		{"gelf", map[string]string{"gelf-address": "udp://127.0.0.1:1", "gelf-compression-level": "10"}, `unknown value "10" for log opt "gelf-compression-level" for gelf log driver`},
		{"journald", map[string]string{"tag": "x", "labels": "a"}, ""},
		{"journald", map[string]string{"journald-nope": "1"}, "unknown log opt 'journald-nope' for journald log driver"},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.driver, tc.opts), func(t *testing.T) {
			err := Validate(tc.driver, tc.opts)
			if tc.err == "" {
				assert.NilError(t, err)
			} else {
				assert.Check(t, is.ErrorContains(err, tc.err))
			}
		})
	}
}

func TestReadable(t *testing.T) {
	st, ok := Readable("json-file", "abc", map[string]string{"max-size": "1k", "max-file": "2"})
	assert.Assert(t, ok)
	assert.Equal(t, st.Name, "abc-json.log")
	assert.Equal(t, st.Rotation, logfile.Rotation{MaxSize: 1000, MaxFiles: 2})

	st, ok = Readable("local", "abc", nil)
	assert.Assert(t, ok)
	assert.Equal(t, st.Name, "local-logs/container.log")
	assert.Equal(t, st.Format, logfile.Local)
	assert.Equal(t, st.Rotation, logfile.Rotation{MaxSize: 20 << 20, MaxFiles: 5, Compress: true})

	st, ok = Readable("syslog", "abc", map[string]string{"cache-max-size": "1m", "cache-max-file": "2", "cache-compress": "false"})
	assert.Assert(t, ok)
	assert.Equal(t, st.Name, "container-cached.log")
	assert.Equal(t, st.Rotation, logfile.Rotation{MaxSize: 1000000, MaxFiles: 2})

	_, ok = Readable("syslog", "abc", map[string]string{"cache-disabled": "true"})
	assert.Check(t, !ok)
	_, ok = Readable("none", "abc", nil)
	assert.Check(t, !ok)
}

// recorder is a Driver that keeps what it gets; block, when set, holds
// every Log until it is closed.
type recorder struct {
	mu    sync.Mutex
	lines []string
	block chan struct{}
	fail  error
}

func (r *recorder) Log(m *Message) error {
	if r.block != nil {
		<-r.block
	}
	if r.fail != nil {
		return r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, m.Stream+":"+string(m.Line))
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func TestRingDeliversInOrder(t *testing.T) {
	rec := &recorder{}
	r := newRing(func() (Driver, error) { return rec, nil }, 1<<20)
	var want []string
	for i := 0; i < 100; i++ {
		line := []byte(fmt.Sprintf("line-%d\n", i))
		assert.NilError(t, r.Log(&Message{Stream: "stdout", Line: line, Time: time.Now()}))
		line[0] = 'X' // the ring copied it
		want = append(want, fmt.Sprintf("stdout:line-%d\n", i))
	}
	assert.NilError(t, r.Close())
	assert.DeepEqual(t, rec.got(), want)
	assert.Equal(t, r.Dropped(), uint64(0))
}

// TestRingNeverBlocks: a driver that takes nothing does not hold Log up;
// past the buffer entries are dropped and counted, and Close returns.
func TestRingNeverBlocks(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	r := newRing(func() (Driver, error) { return rec, nil }, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			r.Log(&Message{Stream: "stdout", Line: []byte("0123456789\n")})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Log blocked on a stuck driver")
	}
	// at most two buffers full got through: the one the driver holds, the one queued
	assert.Check(t, r.Dropped() >= 1000-2*10-1, "dropped %d", r.Dropped())
	close(rec.block)
	assert.NilError(t, r.Close())
}

// TestRingRetriesOpen: a server that is not there at first is retried; what
// was queued meanwhile is delivered once it opens.
func TestRingRetriesOpen(t *testing.T) {
	rec := &recorder{}
	var mu sync.Mutex
	attempts := 0
	r := newRingRetry(func() (Driver, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts < 3 {
			return nil, errors.New("connection refused")
		}
		return rec, nil
	}, 1<<20, time.Millisecond)
	assert.NilError(t, r.Log(&Message{Stream: "stderr", Line: []byte("early\n")}))
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.DeepEqual(t, rec.got(), []string{"stderr:early\n"})
	assert.NilError(t, r.Close())
}

// TestRingCloseWithoutServer: a server that never comes does not hold
// Close, and what was queued counts as dropped.
func TestRingCloseWithoutServer(t *testing.T) {
	r := newRing(func() (Driver, error) { return nil, errors.New("connection refused") }, 1<<20)
	for i := 0; i < 5; i++ {
		r.Log(&Message{Stream: "stdout", Line: []byte("x\n")})
	}
	start := time.Now()
	assert.NilError(t, r.Close())
	assert.Check(t, time.Since(start) < closeWait)
	<-r.done
	assert.Equal(t, r.Dropped(), uint64(5))
}

func TestDualWritesBoth(t *testing.T) {
	rec := &recorder{fail: errors.New("remote down")}
	cache := &recorder{}
	d := &dual{remote: rec, cache: cache}
	err := d.Log(&Message{Stream: "stdout", Line: []byte("hi\n")})
	assert.Check(t, is.ErrorContains(err, "remote down"))
	assert.DeepEqual(t, cache.got(), []string{"stdout:hi\n"}) // even when the remote failed
}

func TestJournalField(t *testing.T) {
	for in, want := range map[string]string{"com.example.app": "COMEXAMPLEAPP", "_x": "X", "9a": "A", "a_9": "A_9"} {
		assert.Check(t, is.Equal(journalField(in), want), in)
	}
}

// FuzzValidate: log options come from API clients; no input panics.
func FuzzValidate(f *testing.F) {
	f.Add("syslog", "syslog-address", "tcp+tls://[::1]")
	f.Add("fluentd", "fluentd-address", "tls://h:99999")
	f.Add("gelf", "gelf-address", "udp://:")
	f.Add("local", "max-size", "-1k")
	f.Add("json-file", "max-buffer-size", "1e400")
	f.Fuzz(func(t *testing.T, driver, key, value string) {
		opts := map[string]string{key: value}
		if Validate(driver, opts) == nil {
			Readable(driver, "id", opts)
			nonBlocking(Config{Driver: driver, Opts: opts})
		}
	})
}
