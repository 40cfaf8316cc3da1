// Package dropwriter keeps a stream going when its reader goes away.
package dropwriter

import (
	"io"
	"sync"
)

// writer passes writes on until one fails, then swallows them: a client
// that goes away must not break an exec's stream (and its exit code).
type writer struct {
	mu      sync.Mutex
	w       io.Writer
	dropped bool
}

// New wraps w; nil stays nil (no stream).
func New(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &writer{w: w}
}

func (d *writer) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dropped {
		if _, err := d.w.Write(p); err != nil {
			d.dropped = true
		}
	}
	return len(p), nil
}
