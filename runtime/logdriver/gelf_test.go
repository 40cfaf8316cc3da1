package logdriver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
	"gotest.tools/v3/assert"
)

// TestGELFUDPChunksAndReusesCompressor: a message larger than one datagram
// arrives in chunks (0x1e 0x0f, one id, sequence, count) that reassemble to
// the gzip'ed JSON; the next message, through the reused compressor, too.
func TestGELFUDPChunksAndReusesCompressor(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer pc.Close()
	w, err := newGELFUDP(pc.LocalAddr().String(), gelf.CompressGzip, 1)
	assert.NilError(t, err)
	defer w.Close()
	read := func() []byte {
		buf := make([]byte, 64*1024)
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		assert.NilError(t, err)
		return buf[:n]
	}
	decode := func(b []byte) map[string]any {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		assert.NilError(t, err)
		js, err := io.ReadAll(zr)
		assert.NilError(t, err)
		var m map[string]any
		assert.NilError(t, json.Unmarshal(js, &m))
		return m
	}
	// random-ish text that gzip cannot squeeze into one datagram
	var sb strings.Builder
	for i := 0; sb.Len() < 20000; i++ {
		sb.WriteString(time.Duration(i * 7919).String())
	}
	big := sb.String()
	assert.NilError(t, w.WriteMessage(&gelf.Message{Version: "1.1", Host: "h", Short: big, RawExtra: json.RawMessage(`{"_x":"y"}`)}))
	var whole []byte
	first := read()
	assert.Assert(t, first[0] == 0x1e && first[1] == 0x0f, "chunked")
	count := int(first[11])
	assert.Assert(t, count > 1)
	chunks := map[int][]byte{int(first[10]): first[12:]}
	for len(chunks) < count {
		c := read()
		assert.DeepEqual(t, c[2:10], first[2:10]) // one message id
		chunks[int(c[10])] = c[12:]
	}
	for i := 0; i < count; i++ {
		whole = append(whole, chunks[i]...)
	}
	m := decode(whole)
	assert.Equal(t, m["short_message"], big)
	assert.Equal(t, m["_x"], "y")

	assert.NilError(t, w.WriteMessage(&gelf.Message{Version: "1.1", Host: "h", Short: "small"}))
	assert.Equal(t, decode(read())["short_message"], "small")
}
