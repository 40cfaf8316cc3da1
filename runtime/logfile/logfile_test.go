package logfile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var t0 = time.Date(2026, 11, 27, 21, 0, 0, 123456789, time.UTC)

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"hi\n", "", "quote \" backslash \\ slash /", "<b>&amp;</b>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8", "\xed\xa0\x80 surrogate bytes", strings.Repeat("x", 20000),
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%.20q", c), func(t *testing.T) {
			want, err := json.Marshal(jsonLog{Log: c, Stream: "stderr", Time: t0})
			assert.NilError(t, err)
			got := AppendEntry(nil, "stderr", []byte(c), t0)
			assert.Equal(t, string(got), string(want)+"\n")
		})
	}
}

func TestAppendEntryTimeFormat(t *testing.T) {
	got := AppendEntry(nil, "stdout", []byte("hi\n"), time.Date(2026, 11, 27, 22, 0, 0, 120000000, time.FixedZone("x", 3600)))
	assert.Equal(t, string(got), `{"log":"hi\n","stream":"stdout","time":"2026-11-27T21:00:00.12Z"}`+"\n")
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("a", MaxLine+10)
	cases := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"a\n", "b\n"}},
		{"split across writes", []string{"ab", "c\nd", "e\n"}, []string{"abc\n", "de\n"}},
		{"partial at end", []string{"a\nprompt> "}, []string{"a\n", "prompt> "}},
		{"long line", []string{long + "\n"}, []string{long[:MaxLine], long[MaxLine:] + "\n"}},
		{"long no newline", []string{long[:MaxLine-1], "bc"}, []string{long[:MaxLine-1] + "b", "c"}},
		{"empty lines", []string{"\n\n"}, []string{"\n", "\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			w, err := Open(path, Rotation{}, nil)
			assert.NilError(t, err)
			lw := NewLineWriter(w, "stdout")
			for _, s := range tc.writes {
				n, err := lw.Write([]byte(s))
				assert.NilError(t, err)
				assert.Equal(t, n, len(s))
			}
			assert.NilError(t, lw.Flush())
			assert.NilError(t, w.Close())
			assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1}), tc.want)
		})
	}
}

func readAll(t *testing.T, path string, opts Options) []string {
	t.Helper()
	var got []string
	err := ReadLogs(context.Background(), path, opts, func(m Message) error {
		got = append(got, string(m.Line))
		return nil
	})
	assert.NilError(t, err)
	return got
}

func writeLog(t *testing.T, entries ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	var b []byte
	for i, e := range entries {
		stream := "stdout"
		if strings.HasPrefix(e, "E") {
			stream = "stderr"
		}
		b = AppendEntry(b, stream, []byte(e+"\n"), t0.Add(time.Duration(i)*time.Second))
	}
	assert.NilError(t, os.WriteFile(path, b, 0o644))
	return path
}

func TestReadLogs(t *testing.T) {
	path := writeLog(t, "o0", "E1", "o2", "E3", "o4")
	lines := func(s ...string) []string {
		for i := range s {
			s[i] += "\n"
		}
		return s
	}
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"all", Options{Stdout: true, Stderr: true, Tail: -1}, lines("o0", "E1", "o2", "E3", "o4")},
		{"stdout", Options{Stdout: true, Tail: -1}, lines("o0", "o2", "o4")},
		{"stderr", Options{Stderr: true, Tail: -1}, lines("E1", "E3")},
		{"tail 2", Options{Stdout: true, Stderr: true, Tail: 2}, lines("E3", "o4")},
		{"tail counts both streams", Options{Stdout: true, Tail: 2}, lines("o4")},
		{"tail more than lines", Options{Stdout: true, Stderr: true, Tail: 50}, lines("o0", "E1", "o2", "E3", "o4")},
		{"tail 0", Options{Stdout: true, Stderr: true, Tail: 0}, nil},
		{"since", Options{Stdout: true, Stderr: true, Tail: -1, Since: t0.Add(2 * time.Second)}, lines("o2", "E3", "o4")},
		{"until", Options{Stdout: true, Stderr: true, Tail: -1, Until: t0.Add(time.Second)}, lines("o0", "E1")},
		{"since until tail", Options{Stdout: true, Stderr: true, Tail: 4, Since: t0.Add(2 * time.Second), Until: t0.Add(3 * time.Second)}, lines("o2", "E3")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, readAll(t, path, tc.opts), tc.want)
		})
	}
}

func TestReadLogsSkipsCorruptAndPartial(t *testing.T) {
	path := writeLog(t, "a", "b")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	assert.NilError(t, err)
	_, err = f.WriteString("not json\n{\"log\":\"half")
	assert.NilError(t, err)
	f.Close()
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1}), []string{"a\n", "b\n"})
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: 3}), []string{"b\n"})
}

func TestReadLogsMissingFile(t *testing.T) {
	assert.Assert(t, is.Len(readAll(t, filepath.Join(t.TempDir(), "nope"), Options{Stdout: true, Tail: -1}), 0))
}

func TestFollow(t *testing.T) {
	// inotify alone must wake the follower: the poll that backs it up
	// comes far later than the test's deadline (a loaded machine can take
	// longer than the real poll interval to run the follower at all)
	defer func(p time.Duration) { pollInterval = p }(pollInterval)
	pollInterval = time.Hour
	path := filepath.Join(t.TempDir(), "log")
	w, err := Open(path, Rotation{}, nil)
	assert.NilError(t, err)
	defer w.Close()
	assert.NilError(t, w.Append("stdout", []byte("before\n")))

	done := make(chan struct{})
	got := make(chan string, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- ReadLogs(context.Background(), path, Options{Stdout: true, Tail: -1, Follow: true, Done: done}, func(m Message) error {
			got <- string(m.Line)
			return nil
		})
	}()
	assert.Equal(t, <-got, "before\n")
	assert.NilError(t, w.Append("stdout", []byte("after\n")))
	select {
	case line := <-got:
		assert.Equal(t, line, "after\n")
	case <-time.After(30 * time.Second):
		t.Fatal("inotify did not wake the follower")
	}
	assert.NilError(t, w.Append("stdout", []byte("last\n")))
	close(done)
	assert.NilError(t, <-errc)
	// "last" must have been delivered before ReadLogs returned.
	var rest []string
	for len(got) > 0 {
		rest = append(rest, <-got)
	}
	assert.Assert(t, is.Contains(rest, "last\n"))
}

func TestFollowCancel(t *testing.T) {
	path := writeLog(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- ReadLogs(ctx, path, Options{Stdout: true, Tail: 0, Follow: true}, func(Message) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
}

func TestDecodeFastAndSlowAgree(t *testing.T) {
	cases := []string{
		`{"log":"hi\n","stream":"stdout","time":"2026-11-27T21:00:00.123456789Z"}`,
		`{"stream":"stderr","log":"a\u003cb \"q\" \\ \/ \ud83d\ude00","time":"2026-11-27T21:00:00Z"}`,
		`{"log":"x","stream":"stdout","attrs":{"a":"b"},"time":"2026-11-27T21:00:00Z"}`,
		`{"LOG":"upper","stream":"stdout","time":"2026-11-27T21:00:00Z"}`,
		` { "log" : "spaces" , "stream" : "stdout" } `,
	}
	for _, c := range cases {
		var d decoder
		var m Message
		assert.NilError(t, d.decode([]byte(c), &m), c)
		var jl jsonLog
		assert.NilError(t, json.Unmarshal([]byte(c), &jl))
		assert.Equal(t, string(m.Line), jl.Log)
		assert.Equal(t, m.Stream, jl.Stream)
		assert.Assert(t, m.Time.Equal(jl.Time))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"log":"hi\n","stream":"stdout","time":"2026-11-27T21:00:00.123456789Z"}`))
	f.Add([]byte(`{"log":"\u00e9\ud83d\ude00\t","stream":"stderr","time":"2026-11-27T21:00:00Z"}`))
	f.Add([]byte(`{"log":"a","log":"b"}`))
	f.Add(AppendEntry(nil, "stdout", []byte("bad \xff <&>"), t0))
	f.Fuzz(func(t *testing.T, line []byte) {
		var d decoder
		var m Message
		err := d.decode(line, &m)
		var jl jsonLog
		jerr := json.Unmarshal(line, &jl)
		if (err == nil) != (jerr == nil) {
			t.Fatalf("decode err %v, encoding/json err %v", err, jerr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(m.Line, []byte(jl.Log)) || m.Stream != jl.Stream || !m.Time.Equal(jl.Time) {
			t.Fatalf("decode %q: got %q %q %v, encoding/json %q %q %v", line, m.Line, m.Stream, m.Time, jl.Log, jl.Stream, jl.Time)
		}
	})
}

func FuzzAppendEntry(f *testing.F) {
	f.Add([]byte("hi\n"))
	f.Add([]byte("\xff\u2028<"))
	f.Fuzz(func(t *testing.T, log []byte) {
		want, err := json.Marshal(jsonLog{Log: string(log), Stream: "stdout", Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEntry(nil, "stdout", log, t0)
		if string(got) != string(want)+"\n" {
			t.Fatalf("got %s want %s", got, want)
		}
		var d decoder
		var m Message
		if err := d.decode(got[:len(got)-1], &m); err != nil {
			t.Fatal(err)
		}
		var jl jsonLog
		json.Unmarshal(want, &jl)
		if string(m.Line) != jl.Log {
			t.Fatalf("round trip %q != %q", m.Line, jl.Log)
		}
	})
}

// TestTail100k is the `docker logs --tail` / full read of a 100k-line log.
func TestTail100k(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b []byte
	for i := 0; i < 100000; i++ {
		b = AppendEntry(b, "stdout", fmt.Appendf(nil, "line %d of the benchmark log\n", i), t0)
	}
	assert.NilError(t, os.WriteFile(path, b, 0o644))
	for _, tail := range []int{-1, 10} {
		start := time.Now()
		n := 0
		var last []byte
		err := ReadLogs(context.Background(), path, Options{Stdout: true, Tail: tail}, func(m Message) error {
			n++
			last = append(last[:0], m.Line...)
			return nil
		})
		assert.NilError(t, err)
		want := 100000
		if tail > 0 {
			want = tail
		}
		assert.Equal(t, n, want)
		assert.Equal(t, string(last), "line 99999 of the benchmark log\n")
		t.Logf("ReadLogs of 100k lines, tail %d: %d entries in %v", tail, n, time.Since(start))
	}
}
