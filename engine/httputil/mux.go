package httputil

import (
	"encoding/binary"
	"io"
	"sync"
)

// StdType is the stream id in the multiplexed attach/logs format.
type StdType byte

const (
	Stdin  StdType = 0
	Stdout StdType = 1
	Stderr StdType = 2
)

// MuxWriter frames writes for one stream of a multiplexed connection: an
// 8-byte header (stream, 0, 0, 0, big-endian length) before each payload,
// the format github.com/moby/moby/api/pkg/stdcopy reads.
type MuxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream StdType
}

// NewMuxWriters returns the stdout and stderr writers of one connection;
// they share a lock so frames never interleave.
func NewMuxWriters(w io.Writer) (stdout, stderr *MuxWriter) {
	mu := &sync.Mutex{}
	return &MuxWriter{mu, w, Stdout}, &MuxWriter{mu, w, Stderr}
}

func (m *MuxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = byte(m.stream)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return m.w.Write(p)
}
