package httputil

import (
	"encoding/json"
	"net/http"
	"sync"
)

// JSONStream writes a stream of JSON messages (the pull/load/events format):
// one object per line, flushed after each, safe for concurrent writers.
type JSONStream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
}

// NewJSONStream sends the status line and headers and returns the stream.
func NewJSONStream(w http.ResponseWriter) *JSONStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONStream{w: w, enc: enc}
}

// Send writes one message and flushes it.
func (s *JSONStream) Send(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	flush(s.w)
	return nil
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// Flush flushes w if it can be flushed.
func Flush(w http.ResponseWriter) { flush(w) }
