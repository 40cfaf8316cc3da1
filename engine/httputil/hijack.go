package httputil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Hijacked is a connection taken over from the HTTP server for a raw
// stream (attach, exec start). Reads return what the client sent after the
// request, including bytes the server had already buffered.
type Hijacked struct {
	net.Conn
	r        io.Reader
	upgrade  bool
	answered bool
}

func (h *Hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite half-closes the connection: the client sees the end of output
// while it may still send input.
func (h *Hijacked) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Hijack takes over the connection without answering yet: call Upgrade
// once the stream is ready, or Fail.
func Hijack(w http.ResponseWriter, r *http.Request) (*Hijacked, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errdefs.ErrNotImplemented.WithMessage("this connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	var reader io.Reader = conn
	if n := rw.Reader.Buffered(); n > 0 {
		buf, _ := rw.Reader.Peek(n)
		reader = io.MultiReader(bufferedCopy(buf), conn)
	}
	return &Hijacked{Conn: conn, r: reader, upgrade: r.Header.Get("Upgrade") != ""}, nil
}

// Upgrade answers "101 UPGRADED" with Upgrade: tcp when the client asked to
// upgrade, else "200 OK", the way dockerd does for attach and exec. After
// it, the connection carries the raw stream.
//
// It returns once the client has read the answer (or after a bound): some
// clients (docker-py) read the answer through a buffer and then the stream
// from the socket beneath it, so stream bytes that arrived together with
// the answer would be lost to them.
func (h *Hijacked) Upgrade(contentType string) error {
	h.answered = true
	var err error
	if h.upgrade {
		_, err = fmt.Fprintf(h.Conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		_, err = fmt.Fprintf(h.Conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	if err == nil {
		waitRead(h.Conn, upgradeReadLimit)
	}
	return err
}

// upgradeReadLimit bounds the wait for a client to read the answer to an
// upgrade: a client that reads it late gets the stream all the same, only
// exposed to its own buffering again.
const upgradeReadLimit = time.Second

// waitRead waits until the peer of a unix socket has read everything
// written to it (the kernel's count of unread bytes sent, SIOCOUTQ, is 0),
// or until limit. Other connections return at once.
func waitRead(conn net.Conn, limit time.Duration) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(limit)
	for pause := 20 * time.Microsecond; ; pause = min(2*pause, time.Millisecond) {
		unread := 0
		cerr := raw.Control(func(fd uintptr) {
			unread, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		})
		if cerr != nil || err != nil || unread == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
	}
}

// Fail answers an error when the stream could not be set up (before Upgrade).
func (h *Hijacked) Fail(status int, msg string) {
	if h.answered {
		return
	}
	h.answered = true
	body, _ := json.Marshal(map[string]string{"message": msg})
	fmt.Fprintf(h.Conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, http.StatusText(status), len(body), body)
}

// Answered reports whether Upgrade or Fail was called.
func (h *Hijacked) Answered() bool { return h.answered }

func bufferedCopy(b []byte) io.Reader {
	c := make([]byte, len(b))
	copy(c, b)
	return bufio.NewReader(&byteReader{b: c})
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
