// Package logdriver owns berth's logging drivers: one interface (Driver),
// one file per driver (none, json-file, local, gelf, journald here; syslog
// and fluentd in logdriver/remote, which pulls in crypto/tls), the
// non-blocking mode's ring buffer and Docker's "dual logging" cache.
//
// berthd checks a container's log options (Validate, in dockerd's words)
// and renders what needs templates or the container record (Info); the
// monitor (berth-shim) opens the driver (Open) and writes every line, so
// logs flow while berthd is down. This package is linked into every
// monitor: it depends on the standard library and small, allocation-free
// libraries only.
package logdriver

import (
	"errors"
	"fmt"
	"time"

	"github.com/berthd/berth/runtime/logfile"
)

// Message is one log entry, the same shape a log reader decodes (as
// moby's logger.Message serves both ways). A driver gets Stream, Line and
// Time: Line is the logged bytes with their '\n' when the line was complete
// (a line cut at logfile.MaxLine or at the end of the output has none).
// Attrs are left empty; the attributes a driver records (log options'
// labels, env and tag) come from its own configuration.
type Message = logfile.Message

// Driver takes a container's log entries. Log must not keep m or m.Line
// past the call. Log and Close are called from one goroutine per stream;
// a Driver is safe for concurrent use.
type Driver interface {
	Log(m *Message) error
	Close() error
}

// Info is what drivers say about the container besides the line: rendered
// by berthd from the container record.
type Info struct {
	ContainerID   string // full ID
	ContainerName string // without "/"
	ImageID       string
	ImageName     string
	Command       string // entrypoint and arguments, joined by spaces
	Created       time.Time
	// Tag is the rendered tag option, or the driver's default when unset
	// ({{.ID}} for the remote drivers, none for the file drivers).
	Tag string `json:",omitempty"`
	// Attrs are the extra attributes the labels, labels-regex, env and
	// env-regex options select (and tag, for the file drivers).
	Attrs map[string]string `json:",omitempty"`
}

// Config is a container's logging as the monitor gets it.
type Config struct {
	Driver string
	Opts   map[string]string `json:",omitempty"`
	// Path is the file `docker logs` reads: the json-file or local log, or
	// the dual-logging cache of a remote driver; "" when there is none.
	Path string `json:",omitempty"`
	Info Info
}

// Factory opens one driver.
type Factory func(cfg Config) (Driver, error)

// Factories are the drivers a monitor can open, by name.
type Factories map[string]Factory

// Builtin are the drivers of this package.
func Builtin() Factories {
	return Factories{
		"none":      func(Config) (Driver, error) { return None{}, nil },
		"json-file": openJSONFile,
		"local":     openLocal,
		"gelf":      openGELF,
		"journald":  openJournald,
	}
}

// ErrUnavailable is returned by Open for a driver this monitor binary was
// built without.
var ErrUnavailable = errors.New("logging driver not available in this monitor")

// Open opens cfg's driver from fs, with the dual-logging cache when the
// driver cannot be read back and the cache is not disabled, and behind a
// ring buffer in non-blocking mode. In non-blocking mode a driver that
// cannot connect yet does not fail Open: it is retried in the background
// while messages wait in (and past max-buffer-size, drop out of) the ring.
// Dropped reports the ring's dropped messages (always 0 when blocking).
func Open(cfg Config, fs Factories) (d Driver, dropped func() uint64, err error) {
	f, ok := fs[cfg.Driver]
	if !ok {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Driver, ErrUnavailable)
	}
	dropped = func() uint64 { return 0 }
	if size, ok := nonBlocking(cfg); ok {
		r := newRing(func() (Driver, error) { return f(cfg) }, size)
		d, dropped = r, r.Dropped
	} else if d, err = f(cfg); err != nil {
		return nil, nil, err
	}
	if cache, ok := CacheStorage(cfg.Driver, cfg.Opts); ok && cfg.Path != "" {
		w, err := logfile.OpenFormat(cfg.Path, logfile.Local, cache.Rotation, nil)
		if err != nil {
			d.Close()
			return nil, nil, fmt.Errorf("error setting up local container log cache: %w", err)
		}
		d = &dual{remote: d, cache: fileDriver{w}}
	}
	return d, dropped, nil
}

// nonBlocking says whether cfg's driver is written through the ring, and
// its size: mode=non-blocking (max-buffer-size), and fluentd-async, whose
// events berth queues in the ring (fluentd-buffer-limit bytes) rather than
// in fluent-logger-golang's async channel, which is allocated up front at
// fluentd-buffer-limit events (8 MiB of pointers by default, resident in
// every monitor: TestMeasureShimPSSPerDriver).
func nonBlocking(cfg Config) (int64, bool) {
	if cfg.Opts["mode"] == ModeNonBlocking {
		size, _ := bufferSize(cfg.Opts)
		return size, true
	}
	if cfg.Driver == "fluentd" {
		if c, err := ParseFluentd(cfg.Opts); err == nil && c.Async {
			return int64(c.BufferLimit), true
		}
	}
	return 0, false
}

// None discards every entry (--log-driver none).
type None struct{}

func (None) Log(*Message) error { return nil }
func (None) Close() error       { return nil }

// fileDriver logs into a json-file or local log.
type fileDriver struct{ w *logfile.Writer }

func (f fileDriver) Log(m *Message) error { return f.w.AppendAt(m.Stream, m.Line, m.Time) }
func (f fileDriver) Close() error         { return f.w.Close() }

// dual is Docker's dual logging: every entry goes to the remote driver and
// to a local cache that `docker logs` reads.
type dual struct {
	remote Driver
	cache  Driver
}

func (d *dual) Log(m *Message) error {
	err := d.remote.Log(m)
	if cerr := d.cache.Log(m); err == nil {
		err = cerr
	}
	return err
}

func (d *dual) Close() error {
	err := d.remote.Close()
	if cerr := d.cache.Close(); err == nil {
		err = cerr
	}
	return err
}

// Appender feeds a Driver from a logfile.LineWriter: it stamps each line
// with the time it was read. One per stream (it reuses its Message).
type Appender struct {
	D   Driver
	msg Message
}

func (a *Appender) Append(stream string, line []byte) error {
	a.msg = Message{Stream: stream, Line: line, Time: time.Now()}
	return a.D.Log(&a.msg)
}

// trimNewline is the line as the remote drivers send it: without its '\n'
// (they frame entries themselves).
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// File is a Driver on an open json-file or local log.
func File(w *logfile.Writer) Driver { return fileDriver{w} }
