package logfile

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLocalEntryWireFormat checks the hand-written encoding with protobuf's
// own wire parser: the frame, every field number and type, as dockerd's
// LogEntry message declares them.
func TestLocalEntryWireFormat(t *testing.T) {
	attrs := encodeLocalAttrs(map[string]string{"b": "2", "a": "1"})
	for _, tc := range []struct {
		line        string
		wantLine    string
		wantPartial bool
	}{
		{"hello\n", "hello", false},
		{"no newline", "no newline", true},
		{"\n", "", false},
		{strings.Repeat("x", 300) + "\n", strings.Repeat("x", 300), false},
	} {
		b := appendLocalEntry(nil, "stderr", []byte(tc.line), attrs, t0)
		size := binary.BigEndian.Uint32(b)
		assert.Equal(t, int(size), len(b)-8)
		assert.Equal(t, binary.BigEndian.Uint32(b[len(b)-4:]), size)
		msg := b[4 : len(b)-4]
		var source, line string
		var nanos int64
		partial := false
		var keys []string
		for len(msg) > 0 {
			num, typ, n := protowire.ConsumeTag(msg)
			assert.Assert(t, n > 0)
			msg = msg[n:]
			switch {
			case num == 1 && typ == protowire.BytesType:
				v, n := protowire.ConsumeString(msg)
				source, msg = v, msg[n:]
			case num == 2 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(msg)
				nanos, msg = int64(v), msg[n:]
			case num == 3 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(msg)
				line, msg = string(v), msg[n:]
			case num == 4 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(msg)
				partial, msg = protowire.DecodeBool(v), msg[n:]
			case num == 6 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(msg)
				msg = msg[n:]
				_, _, n = protowire.ConsumeTag(v)
				k, _ := protowire.ConsumeString(v[n:])
				keys = append(keys, k)
			default:
				t.Fatalf("unexpected field %d type %d", num, typ)
			}
		}
		assert.Equal(t, source, "stderr")
		assert.Equal(t, nanos, t0.UnixNano())
		assert.Equal(t, line, tc.wantLine)
		assert.Equal(t, partial, tc.wantPartial)
		assert.DeepEqual(t, keys, []string{"a", "b"})
	}
}

func TestLocalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, err := OpenFormat(path, Local, Rotation{}, map[string]string{"tag": "web"})
	assert.NilError(t, err)
	w.now = func() time.Time { return t0 }
	assert.NilError(t, w.Append("stdout", []byte("one\n")))
	assert.NilError(t, w.Append("stderr", []byte("two\n")))
	assert.NilError(t, w.Append("stdout", []byte("partial")))
	assert.NilError(t, w.Close())

	var got []Message
	err = ReadLogs(context.Background(), path, Options{Stdout: true, Stderr: true, Tail: -1, Format: Local}, func(m Message) error {
		m.Line = append([]byte(nil), m.Line...)
		got = append(got, m)
		return nil
	})
	assert.NilError(t, err)
	assert.Equal(t, len(got), 3)
	assert.Equal(t, string(got[0].Line), "one\n")
	assert.Equal(t, got[1].Stream, "stderr")
	assert.Equal(t, string(got[2].Line), "partial")
	assert.Check(t, got[0].Time.Equal(t0))
	assert.DeepEqual(t, got[0].Attrs, map[string]string{"tag": "web"})

	for _, n := range []int{0, 1, 2, 3, 10} {
		lines := readAll(t, path, Options{Stdout: true, Stderr: true, Tail: n, Format: Local})
		assert.Check(t, is.Len(lines, min(n, 3)), "tail %d", n)
	}
	only := readAll(t, path, Options{Stderr: true, Tail: -1, Format: Local})
	assert.DeepEqual(t, only, []string{"two\n"})
}

func TestLocalRotationCompressed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "container.log")
	rot := Rotation{MaxSize: 200, MaxFiles: 3, Compress: true}
	w, err := OpenFormat(path, Local, rot, nil)
	assert.NilError(t, err)
	defer w.Close()
	fill(t, w, 0, 40)
	assert.DeepEqual(t, names(t, dir), []string{"container.log", "container.log.1.gz", "container.log.2.gz"})
	all := readAll(t, path, Options{Stdout: true, Tail: -1, Rotation: rot, Format: Local})
	assert.Assert(t, len(all) > 0 && len(all) < 40)
	assert.Equal(t, all[len(all)-1], "line-39\n")
	first := 40 - len(all)
	assert.DeepEqual(t, all, numbered(first, 40))
	for _, n := range []int{1, 5, 9, len(all), 100} {
		got := readAll(t, path, Options{Stdout: true, Tail: n, Rotation: rot, Format: Local})
		assert.Check(t, is.DeepEqual(got, numbered(max(first, 40-n), 40)), "tail %d", n)
	}
}

// TestLocalFollowSeesPartialWrites: an entry whose bytes arrive in two
// writes is delivered once whole, never half.
func TestLocalFollowSeesPartialWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	f, err := os.Create(path)
	assert.NilError(t, err)
	defer f.Close()
	entry := appendLocalEntry(nil, "stdout", []byte("whole\n"), nil, t0)
	_, err = f.Write(entry[:5])
	assert.NilError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	got := make(chan string, 4)
	errc := make(chan error, 1)
	go func() {
		errc <- ReadLogs(ctx, path, Options{Stdout: true, Tail: -1, Follow: true, Done: done, Format: Local}, func(m Message) error {
			got <- string(m.Line)
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond) // the reader has seen the half entry (or not: both must work)
	_, err = f.Write(entry[5:])
	assert.NilError(t, err)
	select {
	case l := <-got:
		assert.Equal(t, l, "whole\n")
	case <-ctx.Done():
		t.Fatal("entry not delivered")
	}
	close(done)
	assert.NilError(t, <-errc)
	assert.Equal(t, len(got), 0)
}

func TestLocalCorruptFileEndsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	b := appendLocalEntry(nil, "stdout", []byte("ok\n"), nil, t0)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 1, 2, 3)
	assert.NilError(t, os.WriteFile(path, b, 0o600))
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1, Format: Local}), []string{"ok\n"})
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: 5, Format: Local}), []string(nil))
}

func FuzzDecodeLocal(f *testing.F) {
	f.Add(appendLocalEntry(nil, "stdout", []byte("hi\n"), encodeLocalAttrs(map[string]string{"k": "v"}), t0))
	f.Add([]byte{0, 0, 0, 1, 8, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		var scratch []byte
		_ = decodeLocal(b, &m, &scratch)
		_, _ = countLocal(strings.NewReader(string(b)))
		_ = fmt.Sprint(m.Stream)
	})
}
