// Package detachkeys is Docker's detach key sequence on an attach's or an
// exec's input (ctrl-p,ctrl-q unless the client names others): parsed from
// the client's detachKeys, and watched for on the input, for every backend.
package detachkeys

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// Default is Docker's sequence when the client names none.
const Default = "ctrl-p,ctrl-q"

// Parse reads a detach key sequence such as "ctrl-p,ctrl-q".
func Parse(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch == '[':
				out = append(out, 27)
			case ch == '\\':
				out = append(out, 28)
			case ch == ']':
				out = append(out, 29)
			case ch == '^':
				out = append(out, 30)
			case ch == '_':
				out = append(out, 31)
			default:
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid detach keys (%s) provided", s))
			}
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid detach keys (%s) provided", s))
		}
	}
	return out, nil
}

// NewReader watches r for the sequence keys (Parse's).
func NewReader(r io.Reader, keys []byte) *Reader {
	return &Reader{r: r, keys: keys, detached: make(chan struct{})}
}

// Detached is closed once the sequence was read.
func (d *Reader) Detached() <-chan struct{} { return d.detached }

// Reader passes input through until the detach key sequence is typed, then
// reads as end of input. Bytes that begin the sequence are held back until
// it is clear they are not it.
type Reader struct {
	r        io.Reader
	keys     []byte
	held     []byte
	buf      []byte
	scratch  []byte
	err      error
	done     bool
	once     sync.Once
	detached chan struct{}
}

func (d *Reader) Read(p []byte) (int, error) {
	for len(d.buf) == 0 {
		if d.done {
			return 0, io.EOF
		}
		if d.err != nil {
			return 0, d.err
		}
		if cap(d.scratch) < len(p) {
			d.scratch = make([]byte, len(p))
		}
		n, err := d.r.Read(d.scratch[:len(p)])
		d.scan(d.scratch[:n])
		d.err = err
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}

func (d *Reader) scan(in []byte) {
	for _, b := range in {
		if d.done {
			return
		}
		if len(d.keys) > 0 && b == d.keys[len(d.held)] {
			d.held = append(d.held, b)
			if len(d.held) == len(d.keys) {
				d.done = true
				d.once.Do(func() { close(d.detached) })
			}
			continue
		}
		d.buf = append(d.buf, d.held...)
		d.held = d.held[:0]
		d.buf = append(d.buf, b)
	}
}
