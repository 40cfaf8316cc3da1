package logfile

import (
	"bytes"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Writer appends entries to a json-file or local log. Each entry is written
// with a single write(2) on an O_APPEND file, so a concurrent reader never
// sees an interleaved entry. It is safe for concurrent use.
type Writer struct {
	mu     sync.Mutex
	path   string
	rot    Rotation
	format Format
	// attrs are stored with every entry, encoded for the format: a JSON
	// object or the local format's LogAttr fields; nil for none
	attrs []byte
	f     *os.File
	size  int64
	buf   []byte
	now   func() time.Time
}

// Open opens (creating it if needed, mode 0640) the log file at path for
// appending, rolling it as rot says; attrs, when there are any, are stored
// with every entry.
func Open(path string, rot Rotation, attrs map[string]string) (*Writer, error) {
	return OpenFormat(path, JSONFile, rot, attrs)
}

// OpenFormat is Open for a log of the given format.
func OpenFormat(path string, format Format, rot Rotation, attrs map[string]string) (*Writer, error) {
	var enc []byte
	if len(attrs) > 0 {
		if format == Local {
			enc = encodeLocalAttrs(attrs)
		} else {
			var err error
			if enc, err = json.Marshal(attrs); err != nil {
				return nil, err
			}
		}
	}
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, rot: rot, format: format, attrs: enc, f: f, now: time.Now}
	if fi, err := f.Stat(); err == nil {
		w.size = fi.Size()
	}
	return w, nil
}

func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Append writes one entry for stream stamped with the current time. line is
// logged as is: a complete line keeps its trailing '\n', a partial one has none.
func (w *Writer) Append(stream string, line []byte) error {
	return w.AppendAt(stream, line, w.now())
}

// AppendAt is Append of an entry logged at t.
func (w *Writer) AppendAt(stream string, line []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.format == Local {
		w.buf = appendLocalEntry(w.buf[:0], stream, line, w.attrs, t)
	} else {
		w.buf = appendEntry(w.buf[:0], stream, line, w.attrs, t)
	}
	if w.rot.MaxSize > 0 && w.size >= w.rot.MaxSize {
		if err := w.roll(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if cap(w.buf) > 64*1024 {
		w.buf = nil // don't pin the memory of one huge line in a small shim
	}
	return err
}

// roll starts a new file once the current one reached MaxSize (checked
// before a write, as dockerd does, so a file ends past MaxSize by at most
// one entry). A roll that fails keeps appending to the current file.
func (w *Writer) roll() error {
	if err := roll(w.path, w.rot); err != nil {
		w.size = 0 // keep appending; try again after another MaxSize, not on every entry
		return nil
	}
	f, err := openLog(w.path)
	if err != nil {
		return err
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Appender takes log entries: line keeps its '\n' when it is complete.
// The Appender must not keep line past the call.
type Appender interface {
	Append(stream string, line []byte) error
}

// LineWriter splits one output stream into log entries the way Docker's log
// copier does: an entry per line, a line longer than MaxLine is split into
// MaxLine pieces, and a trailing partial line is logged by Flush. It is not
// safe for concurrent use; use one per stream.
type LineWriter struct {
	w      Appender
	stream string
	buf    []byte
}

// NewLineWriter returns a LineWriter for stream ("stdout" or "stderr") on w.
func NewLineWriter(w Appender, stream string) *LineWriter {
	return &LineWriter{w: w, stream: stream}
}

// Write logs every complete line of p and keeps the rest for later. It
// always consumes all of p; the error is the log file's.
func (l *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	var err error
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := MaxLine - len(l.buf)
			if len(p) < room {
				l.buf = append(l.buf, p...)
				break
			}
			l.buf = append(l.buf, p[:room]...)
			p = p[room:]
			err = keep(err, l.emit())
			continue
		}
		if len(l.buf) == 0 && i+1 <= MaxLine {
			err = keep(err, l.w.Append(l.stream, p[:i+1]))
			p = p[i+1:]
			continue
		}
		take := i + 1
		if room := MaxLine - len(l.buf); take > room {
			take = room
		}
		l.buf = append(l.buf, p[:take]...)
		p = p[take:]
		err = keep(err, l.emit())
	}
	return n, err
}

// Pending is the partial line kept for later (until its end or Flush).
func (l *LineWriter) Pending() []byte { return l.buf }

// Resume makes p the partial line kept for later, as Pending gave it.
func (l *LineWriter) Resume(p []byte) { l.buf = append(l.buf[:0], p...) }

// Flush logs a pending partial line, if any (at end of stream).
func (l *LineWriter) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	return l.emit()
}

func (l *LineWriter) emit() error {
	err := l.w.Append(l.stream, l.buf)
	l.buf = l.buf[:0]
	return err
}

func keep(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
