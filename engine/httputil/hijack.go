package httputil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/containerd/errdefs"
)

// Hijacked is a connection taken over from the HTTP server for a raw
// stream (attach, exec start). Reads return what the client sent after the
// request, including bytes the server had already buffered.
type Hijacked struct {
	net.Conn
	r io.Reader
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

// Hijack takes over the connection and answers "101 UPGRADED" with
// Upgrade: tcp when the client asked to upgrade, else "200 OK", the way
// dockerd does for attach and exec.
func Hijack(w http.ResponseWriter, r *http.Request, contentType string) (*Hijacked, error) {
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
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	return &Hijacked{Conn: conn, r: reader}, nil
}

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

// StreamContentType is the content type of an attach, exec or logs stream.
func StreamContentType(version string, tty bool) string {
	if !tty && !VersionLessThan(version, "1.42") {
		return "application/vnd.docker.multiplexed-stream"
	}
	return "application/vnd.docker.raw-stream"
}
