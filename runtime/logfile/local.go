package logfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sort"
	"time"
)

// The local driver's format, as dockerd writes it (daemon/logger/local):
// every entry is a protobuf LogEntry framed by its length, big-endian uint32,
// before and after it, so a reader can walk the file in both directions:
//
//	[len][LogEntry][len]
//
//	message LogEntry {
//		string source = 1;     // "stdout" or "stderr"
//		int64 time_nano = 2;
//		bytes line = 3;        // without its '\n'
//		bool partial = 4;      // the line had no '\n' (split or cut off)
//		PartialLogEntryMetadata partial_log_metadata = 5;
//		repeated LogAttr attrs = 6; // {string key = 1; string value = 2;}
//	}
//
// The encoding is written by hand (five fields of protobuf's wire format) so
// that the shim, which writes it, depends on the standard library only.

// Format is a log file's encoding.
type Format int

const (
	// JSONFile is the json-file driver's format (one JSON object a line).
	JSONFile Format = iota
	// Local is the local driver's length-framed protobuf format.
	Local
)

const (
	localFrameLen = 4
	// maxLocalEntry is the largest entry a reader accepts; a length beyond
	// it is a corrupt file (dockerd's limit is 1e6 as well).
	maxLocalEntry = 1_000_000
)

// protobuf wire types
const (
	wireVarint = 0
	wireBytes  = 2
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStringField(b []byte, field int, v string) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeLocalAttrs encodes attrs as the repeated LogAttr field, sorted by
// key as dockerd sorts them, ready to be appended to every entry.
func encodeLocalAttrs(attrs map[string]string) []byte {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out, attr []byte
	for _, k := range keys {
		attr = appendStringField(attr[:0], 1, k)
		attr = appendStringField(attr, 2, attrs[k])
		out = appendBytesField(out, 6, attr)
	}
	return out
}

// appendLocalEntry appends one framed entry. line keeps its '\n' when the
// line is complete; the format stores it without and says "partial" when
// there is none.
func appendLocalEntry(dst []byte, stream string, line []byte, attrs []byte, t time.Time) []byte {
	partial := true
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line, partial = line[:n-1], false
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendStringField(dst, 1, stream)
	dst = appendTag(dst, 2, wireVarint)
	dst = binary.AppendUvarint(dst, uint64(t.UnixNano()))
	if len(line) > 0 {
		dst = appendBytesField(dst, 3, line)
	}
	if partial {
		dst = appendTag(dst, 4, wireVarint)
		dst = append(dst, 1)
	}
	dst = append(dst, attrs...)
	size := len(dst) - start - localFrameLen
	binary.BigEndian.PutUint32(dst[start:], uint32(size))
	return binary.BigEndian.AppendUint32(dst, uint32(size))
}

// decodeLocal parses one LogEntry (without its frame) into m. m.Line is
// built in *scratch.
func decodeLocal(b []byte, m *Message, scratch *[]byte) error {
	*m = Message{}
	partial := false
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errSyntax
		}
		b = b[n:]
		field, wire := int(tag>>3), int(tag&7)
		switch wire {
		case wireVarint:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errSyntax
			}
			b = b[n:]
			switch field {
			case 2:
				m.Time = time.Unix(0, int64(v))
			case 4:
				partial = v != 0
			}
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errSyntax
			}
			v := b[n : n+int(l)]
			b = b[n+int(l):]
			switch field {
			case 1:
				m.Stream = streamName(v)
			case 3:
				*scratch = append((*scratch)[:0], v...)
			case 6:
				k, val, err := decodeAttr(v)
				if err != nil {
					return err
				}
				if m.Attrs == nil {
					m.Attrs = map[string]string{}
				}
				m.Attrs[k] = val
			}
		case 5: // 32-bit
			if len(b) < 4 {
				return errSyntax
			}
			b = b[4:]
		case 1: // 64-bit
			if len(b) < 8 {
				return errSyntax
			}
			b = b[8:]
		default:
			return errSyntax
		}
	}
	if !partial {
		*scratch = append(*scratch, '\n')
	}
	m.Line = *scratch
	return nil
}

func decodeAttr(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag&7 != wireBytes {
			return "", "", errSyntax
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return "", "", errSyntax
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		switch tag >> 3 {
		case 1:
			k = s
		case 2:
			v = s
		}
	}
	return k, v, nil
}

var errIncomplete = errors.New("logfile: incomplete entry")

// readLocal returns the next complete entry of br (without its frame),
// valid until the next read, and consumes it; errIncomplete (nothing
// consumed) when the rest of the entry has not been written yet.
func readLocal(br *bufio.Reader) ([]byte, error) {
	hdr, err := br.Peek(localFrameLen)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if len(hdr) == 0 {
				return nil, io.EOF
			}
			return nil, errIncomplete
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr))
	if n > maxLocalEntry || n+2*localFrameLen > br.Size() {
		return nil, errSyntax
	}
	rec, err := br.Peek(n + 2*localFrameLen)
	if err != nil {
		if err == io.EOF {
			return nil, errIncomplete
		}
		return nil, err
	}
	if int(binary.BigEndian.Uint32(rec[localFrameLen+n:])) != n {
		return nil, errSyntax
	}
	br.Discard(n + 2*localFrameLen)
	return rec[localFrameLen : localFrameLen+n], nil
}

// drainLocal delivers every complete entry up to the current end of file.
func (r *reader) drainLocal() error {
	for {
		rec, err := readLocal(r.br)
		if err == io.EOF || err == errIncomplete {
			return nil
		}
		if err == errSyntax {
			return nil // a corrupt file ends here: what came before stands
		}
		if err != nil {
			return err
		}
		if err := decodeLocal(rec, &r.msg, &r.dec.scratch); err != nil {
			continue
		}
		if err := r.filter(&r.msg); err != nil {
			return err
		}
	}
}

// localTailOffset returns the offset of the n-th last entry of f, walking
// back over the trailing lengths, and how many entries that is.
func localTailOffset(f *os.File, n int) (int64, int, error) {
	pos, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, 0, err
	}
	var b [localFrameLen]byte
	count := 0
	for pos >= 2*localFrameLen && count < n {
		if _, err := f.ReadAt(b[:], pos-localFrameLen); err != nil {
			return 0, 0, err
		}
		size := int64(binary.BigEndian.Uint32(b[:]))
		start := pos - size - 2*localFrameLen
		if size > maxLocalEntry || start < 0 {
			break // corrupt, or a writer mid-entry: start where we are
		}
		pos = start
		count++
	}
	return pos, count, nil
}

// countLocal counts the complete entries of r.
func countLocal(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	n := 0
	for {
		_, err := readLocal(br)
		if err == io.EOF || err == errIncomplete || err == errSyntax {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}

// skipLocal drops the first n entries of br.
func skipLocal(br *bufio.Reader, n int) {
	for i := 0; i < n; i++ {
		if _, err := readLocal(br); err != nil {
			return
		}
	}
}
