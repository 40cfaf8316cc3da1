package logfile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fill writes n entries "line-<i>" one by one, as dockerd's driver would
// receive them.
func fill(t *testing.T, w *Writer, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		assert.NilError(t, w.Append("stdout", []byte(fmt.Sprintf("line-%d\n", i))))
	}
}

func numbered(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line-%d\n", i))
	}
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestRotation(t *testing.T) {
	// Entries are 77 or 78 bytes; a file rolls once it reached 300 bytes,
	// so each rolled file holds 4 entries, as dockerd's would.
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			rot := Rotation{MaxSize: 300, MaxFiles: 3, Compress: compress}
			w, err := Open(path, rot, nil)
			assert.NilError(t, err)
			defer w.Close()
			w.now = func() time.Time { return t0 }
			fill(t, w, 0, 30)

			want := []string{"log", "log.1", "log.2"}
			if compress {
				want = []string{"log", "log.1.gz", "log.2.gz"}
			}
			assert.DeepEqual(t, names(t, dir), want)
			// 30 entries: 7 files of 4 were rolled, the current one has 2;
			// the two newest rolled files are kept.
			all := Options{Stdout: true, Tail: -1, Rotation: rot}
			assert.DeepEqual(t, readAll(t, path, all), numbered(20, 30))
			for _, n := range []int{1, 2, 3, 5, 6, 9, 10, 11, 100} {
				tail := all
				tail.Tail = n
				assert.Check(t, is.DeepEqual(readAll(t, path, tail), numbered(max(20, 30-n), 30)), "tail %d", n)
			}
			// A reader that does not know about rolling reads the current file.
			assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1}), numbered(28, 30))
		})
	}
}

func TestRotationSingleFile(t *testing.T) {
	// max-size without max-file: the log is rolled to log.1, which is never
	// read back (dockerd keeps it on disk as well).
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	rot := Rotation{MaxSize: 300, MaxFiles: 1}
	w, err := Open(path, rot, nil)
	assert.NilError(t, err)
	defer w.Close()
	fill(t, w, 0, 10)
	assert.DeepEqual(t, names(t, dir), []string{"log", "log.1"})
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1, Rotation: rot}), numbered(8, 10))

	// A writer reopened on the same log (a new monitor after a restart)
	// counts what is already in the file.
	w.Close()
	w, err = Open(path, rot, nil)
	assert.NilError(t, err)
	fill(t, w, 10, 3)
	assert.DeepEqual(t, readAll(t, path, Options{Stdout: true, Tail: -1, Rotation: rot}), numbered(12, 13))
}

func TestFollowAcrossRolls(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			rot := Rotation{MaxSize: 300, MaxFiles: 2, Compress: compress}
			w, err := Open(path, rot, nil)
			assert.NilError(t, err)
			defer w.Close()
			fill(t, w, 0, 2)

			done := make(chan struct{})
			got := make(chan string, 1000)
			errc := make(chan error, 1)
			go func() {
				errc <- ReadLogs(context.Background(), path, Options{Stdout: true, Tail: -1, Follow: true, Done: done, Rotation: rot}, func(m Message) error {
					got <- string(m.Line)
					return nil
				})
			}()
			var lines []string
			next := func() string {
				select {
				case l := <-got:
					lines = append(lines, l)
					return l
				case err := <-errc:
					t.Fatalf("follow ended early: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatalf("follow stalled after %q", lines)
				}
				return ""
			}
			next()
			next()
			// Several rolls while the reader follows, each waited for, so
			// none is skipped; then a burst, and the writer goes away.
			for i := 2; i < 20; i++ {
				fill(t, w, i, 1)
				assert.Equal(t, next(), fmt.Sprintf("line-%d\n", i))
			}
			fill(t, w, 20, 3)
			close(done)
			assert.NilError(t, <-errc)
			for len(got) > 0 {
				lines = append(lines, <-got)
			}
			assert.DeepEqual(t, lines, numbered(0, 23))
			assert.Check(t, !slices.ContainsFunc(lines, func(s string) bool { return s == "" }))
		})
	}
}

func TestRollFailureKeepsAppending(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	w, err := Open(path, Rotation{MaxSize: 100, MaxFiles: 2}, nil)
	assert.NilError(t, err)
	defer w.Close()
	// log.1 is a non-empty directory: the rename of log onto it fails.
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "log.1", "x"), 0o755))
	fill(t, w, 0, 5)
	assert.Check(t, is.DeepEqual(readAll(t, path, Options{Stdout: true, Tail: -1}), numbered(0, 5)))
}

func TestAttrs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	attrs := map[string]string{"tag": "web/<1>", "FOO": "bar", "app": "web"}
	w, err := Open(path, Rotation{}, attrs)
	assert.NilError(t, err)
	defer w.Close()
	w.now = func() time.Time { return t0 }
	assert.NilError(t, w.Append("stderr", []byte("hi\n")))

	// byte for byte what dockerd's driver writes: attrs between stream and time
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	want, err := json.Marshal(jsonLog{Log: "hi\n", Stream: "stderr", Attrs: attrs, Time: t0})
	assert.NilError(t, err)
	assert.Equal(t, string(b), string(want)+"\n")
	assert.Check(t, is.Contains(string(b), `"stream":"stderr","attrs":{"FOO":"bar","app":"web","tag":"web/\u003c1\u003e"},"time"`))

	var got []Message
	assert.NilError(t, ReadLogs(context.Background(), path, Options{Stderr: true, Tail: -1}, func(m Message) error {
		got = append(got, m)
		return nil
	}))
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, is.Equal(string(got[0].Line), "hi\n"))
	assert.Check(t, is.DeepEqual(got[0].Attrs, attrs))
	assert.Check(t, got[0].Time.Equal(t0))
}
