package containers

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/internal/safe"
	"golang.org/x/sys/unix"
)

// A hijacked attach or exec stream must end when its client goes away,
// even when the container prints nothing (a write would fail) and the
// client sent no input. Reading the client's input tells only half: EOF is
// also what a client that half-closed its side sends (`echo x | docker run
// -i ...` keeps reading the output). So once the input ends, the
// connection is polled for POLLHUP, which a unix socket reports only when
// the peer closed both directions.

// hangupPoll is how often a half-closed connection is checked.
const hangupPoll = 250 * time.Millisecond

// hangupReader reads the client's input and cancels ctx when the client
// has gone.
type hangupReader struct {
	r      io.Reader
	conn   syscall.Conn
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// watchHangup returns the stream's input and a context cancelled when the
// client hangs up (or cancel is called).
func watchHangup(parent context.Context, r io.Reader, conn any) (io.Reader, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	h := &hangupReader{r: r, ctx: ctx, cancel: cancel}
	h.conn, _ = conn.(syscall.Conn)
	return h, ctx, cancel
}

func (h *hangupReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err != nil {
		h.once.Do(func() { safe.Go("watch for a client's hang-up", func() { h.watch(err) }) })
	}
	return n, err
}

func (h *hangupReader) watch(readErr error) {
	if !errors.Is(readErr, io.EOF) {
		h.cancel() // reset, or closed under us
		return
	}
	if h.conn == nil {
		return
	}
	raw, err := h.conn.SyscallConn()
	if err != nil {
		return
	}
	t := time.NewTicker(hangupPoll)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		gone := false
		err := raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
			if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
				gone = fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
			}
		})
		if err != nil || gone {
			h.cancel()
			return
		}
	}
}
