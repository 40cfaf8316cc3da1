package logfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
)

// segment is a rolled file to read, from its skip-th line.
type segment struct {
	name string
	gz   bool
	skip int
}

// startAt finds where reading starts for opts.Tail (all when negative): the
// rolled files to read first, oldest first, and the offset in the current
// file f.
func startAt(f *os.File, path string, opts Options) ([]segment, int64, error) {
	want := opts.Tail
	off, have := int64(0), 0
	if want > 0 {
		var err error
		if off, have, err = tailOffset(f, want, opts.Format); err != nil || have >= want {
			return nil, off, err
		}
	}
	var older []segment
	for i := 1; i < opts.Rotation.files(); i++ {
		seg, ok := findRolled(path, i)
		if !ok {
			break
		}
		if want > 0 {
			n, err := seg.entries(opts.Format)
			if err != nil {
				return nil, 0, err
			}
			if need := want - have; n >= need {
				seg.skip, have = n-need, want
			} else {
				have += n
			}
		}
		older = append([]segment{seg}, older...)
		if want > 0 && have >= want {
			break
		}
	}
	return older, off, nil
}

// findRolled returns the n-th rolled file of the log at path, plain or
// compressed.
func findRolled(path string, n int) (segment, bool) {
	for _, gz := range []bool{false, true} {
		name := rolled(path, n, gz)
		if _, err := os.Stat(name); err == nil {
			return segment{name: name, gz: gz}, true
		}
	}
	return segment{}, false
}

// open returns the segment's content, decompressed.
func (s segment) open() (io.ReadCloser, error) {
	f, err := os.Open(s.name)
	if err != nil {
		return nil, err
	}
	if !s.gz {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// entries counts the segment's entries.
func (s segment) entries(format Format) (int, error) {
	rc, err := s.open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if format == Local {
		return countLocal(rc)
	}
	buf := make([]byte, 64*1024)
	n, last := 0, byte('\n')
	for {
		k, err := rc.Read(buf)
		if k > 0 {
			n += bytes.Count(buf[:k], []byte{'\n'})
			last = buf[k-1]
		}
		if err == io.EOF {
			if last != '\n' {
				n++
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// readRolled delivers the entries of a rolled file, from its skip-th line.
// One removed since it was found (rolled away meanwhile) reads as empty.
func (r *reader) readRolled(seg segment) error {
	rc, err := seg.open()
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	r.br = bufio.NewReaderSize(rc, 64*1024)
	if r.opts.Format == Local {
		skipLocal(r.br, seg.skip)
		return r.drainLocal()
	}
	for i := 0; i < seg.skip; {
		_, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil
		}
		i++
	}
	r.partial = r.partial[:0]
	return r.drain(true)
}
