package logfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Options select what ReadLogs delivers, with `docker logs` semantics.
type Options struct {
	Stdout, Stderr bool
	// Since and Until bound entry times (zero: unbounded). Until is inclusive.
	Since, Until time.Time
	// Tail is how many entries to start from, counted from the end of the
	// file over both streams as Docker does; -1 means all.
	Tail int
	// Follow keeps reading entries appended after the end of the file.
	Follow bool
	// Done, when Follow is set, is closed by the caller once the container
	// has exited: ReadLogs then reads to the end of the file and returns.
	// A nil Done follows until ctx is done.
	Done <-chan struct{}
	// Rotation is how the log's writer rolls it: which rolled files hold
	// older entries, and whether Follow must watch for a new file.
	Rotation Rotation
	// Format is the file's encoding (json-file's by default).
	Format Format
}

// ErrStop may be returned by the callback to end ReadLogs early without error.
var ErrStop = errors.New("logfile: stop")

// ReadLogs calls fn for every selected entry of the log at path, in order,
// the rolled files of opts.Rotation first. The Message's Line is only valid
// during the call. It returns nil at the end (or when Until is passed, or fn
// returns ErrStop), ctx.Err() when ctx is done, fn's error, or the file's. A
// missing file reads as empty unless Follow is set, in which case it is
// waited for.
func ReadLogs(ctx context.Context, path string, opts Options, fn func(Message) error) error {
	f, err := os.Open(path)
	if err != nil {
		if !os.IsNotExist(err) || !opts.Follow {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if f, err = waitForFile(ctx, path, opts.Done); f == nil {
			return err
		}
	}
	defer func() { f.Close() }()

	if opts.Tail == 0 && !opts.Follow {
		return nil
	}
	r := &reader{opts: opts, fn: fn}
	var off int64
	if opts.Tail == 0 {
		if off, err = f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	} else {
		var older []segment
		if older, off, err = startAt(f, path, opts); err != nil {
			return err
		}
		for _, seg := range older {
			if err := r.readRolled(seg); err != nil {
				return stopped(err)
			}
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	r.br = bufio.NewReaderSize(f, 64*1024)
	if !opts.Follow {
		err := r.drain(true)
		return stopped(err)
	}
	return stopped(r.follow(ctx, &f, path))
}

func stopped(err error) error {
	if errors.Is(err, ErrStop) || errors.Is(err, errUntil) {
		return nil
	}
	return err
}

var errUntil = errors.New("past until")

type reader struct {
	opts    Options
	fn      func(Message) error
	br      *bufio.Reader
	partial []byte // an incomplete last line seen at EOF
	dec     decoder
	msg     Message
}

// drain delivers every complete line up to the current end of file. With
// final set, a trailing line without '\n' is delivered too if it parses.
func (r *reader) drain(final bool) error {
	if r.opts.Format == Local {
		return r.drainLocal()
	}
	for {
		line, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.partial = append(r.partial, line...)
			continue
		}
		if len(r.partial) > 0 {
			r.partial = append(r.partial, line...)
			line = r.partial
		}
		if err == io.EOF {
			if len(line) > 0 {
				if final {
					r.partial = r.partial[:0]
					return r.deliver(line)
				}
				if len(r.partial) == 0 {
					r.partial = append(r.partial, line...)
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.deliver(line[:len(line)-1]); err != nil {
			return err
		}
		r.partial = r.partial[:0]
	}
}

func (r *reader) deliver(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	if err := r.dec.decode(line, &r.msg); err != nil {
		// A corrupt line (or one still being written, at the end) is skipped
		// rather than failing the whole read.
		return nil
	}
	return r.filter(&r.msg)
}

// filter hands m to the callback when the options select it.
func (r *reader) filter(m *Message) error {
	if (m.Stream == "stdout" && !r.opts.Stdout) || (m.Stream == "stderr" && !r.opts.Stderr) {
		return nil
	}
	if !r.opts.Since.IsZero() && m.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && m.Time.After(r.opts.Until) {
		return errUntil
	}
	return r.fn(*m)
}

// tailOffset returns the offset of the start of the n-th last line of f,
// reading backwards in blocks so a huge log costs only what is returned, and
// how many lines that is: fewer than n (from offset 0) when f has fewer.
func tailOffset(f *os.File, n int, format Format) (int64, int, error) {
	if format == Local {
		return localTailOffset(f, n)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, 0, err
	}
	const block = 64 * 1024
	buf := make([]byte, block)
	pos := size
	count := 0
	first := true
	for pos > 0 {
		sz := int64(block)
		if pos < sz {
			sz = pos
		}
		pos -= sz
		b := buf[:sz]
		if _, err := f.ReadAt(b, pos); err != nil && err != io.EOF {
			return 0, 0, err
		}
		end := len(b)
		if first {
			// The final '\n' ends the last line, it does not start one.
			if end > 0 && b[end-1] == '\n' {
				end--
			}
			first = false
		}
		for end > 0 {
			i := bytes.LastIndexByte(b[:end], '\n')
			if i < 0 {
				break
			}
			count++
			if count == n {
				return pos + int64(i) + 1, n, nil
			}
			end = i
		}
	}
	if size > 0 {
		count++ // the first line, which no '\n' starts
	}
	return 0, count, nil
}
