// Package logfile owns berth's container log format: Docker's json-file driver
// format, one JSON object per line:
//
//	{"log":"hi\n","stream":"stdout","time":"2026-11-27T21:00:00.123456789Z"}
//
// with an "attrs" object after "stream" when the log options ask for one.
//
// The Writer side (used by berth-shim) is allocation-light and depends on the
// standard library only, so it adds little to a shim's memory. The reader side
// (used by berthd for `docker logs`) tails from the end of the file and
// follows with inotify.
package logfile

import (
	"time"
	"unicode/utf8"
)

// MaxLine is the longest log entry the LineWriter emits before splitting a
// line that has no newline yet, as Docker's log copier does (16 KiB).
const MaxLine = 16 * 1024

const hex = "0123456789abcdef"

// AppendEntry appends one json-file line (with its trailing '\n') for a
// message of stream ("stdout" or "stderr") logged at t. The result is byte for
// byte what encoding/json would produce for Docker's JSONLog struct.
func AppendEntry(dst []byte, stream string, log []byte, t time.Time) []byte {
	return appendEntry(dst, stream, log, nil, t)
}

// appendEntry is AppendEntry with the entry's attrs, already encoded as a
// JSON object (nil for none).
func appendEntry(dst []byte, stream string, log []byte, attrs []byte, t time.Time) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendString(dst, log)
	dst = append(dst, `,"stream":`...)
	dst = appendString(dst, []byte(stream))
	if attrs != nil {
		dst = append(dst, `,"attrs":`...)
		dst = append(dst, attrs...)
	}
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"', '}', '\n')
	return dst
}

// appendString appends s as a JSON string exactly as encoding/json encodes a
// Go string (HTML-escaped, invalid UTF-8 as \ufffd, U+2028/U+2029 escaped).
func appendString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
