package logdriver

import (
	"bytes"

	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"fmt"
	"io"
	"net"

	"github.com/Graylog2/go-gelf/gelf"
)

// gelfUDP sends GELF over UDP as go-gelf's UDPWriter does (the same
// compression types, 1420-byte chunks with the 0x1e 0x0f header, at most
// 128), but with one compressor reused for every message: go-gelf makes a
// new gzip or zlib writer per message, hundreds of KiB of garbage each,
// which grew a monitor to ~4 MiB (TestMeasureShimPSSPerDriver). TCP, which
// GELF sends uncompressed, stays go-gelf's.
type gelfUDP struct {
	conn  net.Conn
	ctype gelf.CompressType
	level int
	// reused between messages (Log is called under the caller's lock: one
	// stream at a time per driver, see gelfDriver)
	msg, out bytes.Buffer
	zw       interface {
		io.WriteCloser
		Reset(io.Writer)
	}
}

const (
	gelfChunkSize   = 1420
	gelfChunkHeader = 12
	gelfChunkData   = gelfChunkSize - gelfChunkHeader
	gelfMaxChunks   = 128
)

func newGELFUDP(addr string, ctype gelf.CompressType, level int) (*gelfUDP, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	return &gelfUDP{conn: c, ctype: ctype, level: level}, nil
}

func (w *gelfUDP) WriteMessage(m *gelf.Message) error {
	w.msg.Reset()
	if err := m.MarshalJSONBuf(&w.msg); err != nil {
		return err
	}
	payload := w.msg.Bytes()
	if w.ctype != gelf.CompressNone {
		if err := w.compress(payload); err != nil {
			return err
		}
		payload = w.out.Bytes()
	}
	if len(payload) <= gelfChunkSize {
		_, err := w.conn.Write(payload)
		return err
	}
	return w.writeChunked(payload)
}

func (w *gelfUDP) compress(p []byte) error {
	w.out.Reset()
	if w.zw == nil {
		var err error
		if w.ctype == gelf.CompressZlib {
			w.zw, err = zlib.NewWriterLevel(&w.out, w.level)
		} else {
			w.zw, err = gzip.NewWriterLevel(&w.out, w.level)
		}
		if err != nil {
			return err
		}
	} else {
		w.zw.Reset(&w.out)
	}
	if _, err := w.zw.Write(p); err != nil {
		return err
	}
	return w.zw.Close()
}

func (w *gelfUDP) writeChunked(p []byte) error {
	n := (len(p) + gelfChunkData - 1) / gelfChunkData
	if n > gelfMaxChunks {
		return fmt.Errorf("msg too large, would need %d chunks", n)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	chunk := make([]byte, 0, gelfChunkSize)
	for i := 0; i < n; i++ {
		data := p[i*gelfChunkData : min((i+1)*gelfChunkData, len(p))]
		chunk = append(append(append(chunk[:0], 0x1e, 0x0f), id[:]...), byte(i), byte(n))
		chunk = append(chunk, data...)
		if _, err := w.conn.Write(chunk); err != nil {
			return fmt.Errorf("Write (chunk %d/%d): %s", i, n, err)
		}
	}
	return nil
}

func (w *gelfUDP) Close() error { return w.conn.Close() }
