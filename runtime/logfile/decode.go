package logfile

import (
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// Message is one log entry: what a reader decodes, and what a logging
// driver is given to write (logdriver.Message) and the runtime streams
// (runtime.LogLine); declared once, here.
type Message struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // the logged bytes, with their '\n' if the line was complete
	Time   time.Time
	// Attrs are the entry's attributes (log options labels, env, tag).
	Attrs map[string]string
}

var errSyntax = errors.New("logfile: malformed log entry")

// decoder turns lines into Messages. Its fast path handles the shape berth
// and Docker write; anything else (unknown keys, surrogate escapes, invalid
// UTF-8) goes through encoding/json, so results always equal encoding/json's.
type decoder struct {
	scratch []byte // unescaped log text, reused between lines
}

type jsonLog struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Time   time.Time         `json:"time"`
}

// decode parses one line (without its '\n'). m.Line may alias line or the
// decoder's scratch buffer: it is valid until the next call.
func (d *decoder) decode(line []byte, m *Message) error {
	if d.fast(line, m) {
		return nil
	}
	var jl jsonLog
	if err := json.Unmarshal(line, &jl); err != nil {
		return errSyntax
	}
	m.Stream, m.Line, m.Time, m.Attrs = jl.Stream, []byte(jl.Log), jl.Time, jl.Attrs
	return nil
}

func (d *decoder) fast(line []byte, m *Message) bool {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	var log, stream, ts []byte
	var haveLog, haveStream, haveTime bool
	logEscaped := false
	i = skipWS(line, i+1)
	for {
		if i >= len(line) || line[i] != '"' {
			return false
		}
		key, esc, j := scanString(line, i)
		if j < 0 || esc {
			return false
		}
		i = skipWS(line, j)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipWS(line, i+1)
		if i >= len(line) || line[i] != '"' {
			return false // null, numbers, objects: leave to encoding/json
		}
		val, esc, j := scanString(line, i)
		if j < 0 {
			return false
		}
		switch string(key) {
		case "log":
			log, logEscaped, haveLog = val, esc, true
		case "stream":
			if esc {
				return false
			}
			stream, haveStream = val, true
		case "time":
			if esc {
				return false
			}
			ts, haveTime = val, true
		default:
			return false
		}
		i = skipWS(line, j)
		if i >= len(line) {
			return false
		}
		if line[i] == ',' {
			i = skipWS(line, i+1)
			continue
		}
		if line[i] != '}' {
			return false
		}
		if skipWS(line, i+1) != len(line) {
			return false
		}
		break
	}
	var t time.Time
	if haveTime {
		if err := t.UnmarshalText(ts); err != nil {
			return false
		}
	}
	m.Line = nil
	if haveLog {
		if logEscaped {
			var ok bool
			d.scratch, ok = unescape(d.scratch[:0], log)
			if !ok {
				return false
			}
			m.Line = d.scratch
		} else {
			m.Line = log
		}
	}
	m.Stream = ""
	if haveStream {
		m.Stream = streamName(stream)
	}
	m.Time = t
	m.Attrs = nil
	return true
}

// streamName avoids allocating for the two names every line carries.
func streamName(b []byte) string {
	switch string(b) {
	case "stdout":
		return "stdout"
	case "stderr":
		return "stderr"
	}
	return string(b)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString scans the JSON string starting at b[i] == '"'. It returns the
// raw contents, whether they hold escapes, and the index after the closing
// quote, or -1 if the string is not one the fast path accepts (control bytes,
// invalid UTF-8).
func scanString(b []byte, i int) ([]byte, bool, int) {
	start := i + 1
	esc := false
	for j := start; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return b[start:j], esc, j + 1
		case c == '\\':
			esc = true
			j += 2
		case c < 0x20:
			return nil, false, -1
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, -1
			}
			j += size
		}
	}
	return nil, false, -1
}

// unescape decodes the escapes encoding/json writes. Surrogate escapes are
// refused (encoding/json pairs or replaces them; let it).
func unescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+4 >= len(s) {
				return dst, false
			}
			var r rune
			for _, h := range s[i+1 : i+5] {
				var v byte
				switch {
				case h >= '0' && h <= '9':
					v = h - '0'
				case h >= 'a' && h <= 'f':
					v = h - 'a' + 10
				case h >= 'A' && h <= 'F':
					v = h - 'A' + 10
				default:
					return dst, false
				}
				r = r<<4 | rune(v)
			}
			if r >= 0xD800 && r < 0xE000 {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
			i += 4
		default:
			return dst, false
		}
	}
	return dst, true
}
