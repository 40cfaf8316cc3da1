package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The log reader is built from a directory and the drivers' storage rule
// alone: no store, monitor or network.
func TestLogReaderAlone(t *testing.T) {
	dir := t.TempDir()
	readable := func(driver, id string, _ map[string]string) (logdriver.Storage, bool) {
		if driver == "none" {
			return logdriver.Storage{}, false
		}
		return logdriver.Storage{Name: id + ".log", Format: logfile.JSONFile}, true
	}
	l := newLogReader(dir, readable)
	rec := &Record{ID: "c1", Config: &container.Config{}, HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file"}}}
	now := time.Now()
	var log []byte
	log = logfile.AppendEntry(log, "stdout", []byte("out\n"), now)
	log = logfile.AppendEntry(log, "stderr", []byte("err\n"), now)
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "c1"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "c1", "c1.log"), log, 0o600))

	t.Run("read", func(t *testing.T) {
		st, err := l.stream(context.Background(), rec, LogsOptions{Stdout: true, Tail: -1}, func() <-chan struct{} {
			t.Error("asked when a log that is not followed ends")
			return nil
		})
		assert.NilError(t, err)
		var got []string
		for line := range st.Lines {
			got = append(got, line.Stream+":"+string(line.Line))
		}
		assert.Check(t, is.DeepEqual(got, []string{"stdout:out\n"}))
	})
	t.Run("follow ends when told", func(t *testing.T) {
		done := make(chan struct{})
		st, err := l.stream(context.Background(), rec, LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1}, func() <-chan struct{} { return done })
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string((<-st.Lines).Line), "out\n"))
		assert.Check(t, is.Equal(string((<-st.Lines).Line), "err\n"))
		close(done)
		for range st.Lines {
			t.Error("a line after the end")
		}
	})
	t.Run("replay", func(t *testing.T) {
		var out, errOut writerFunc
		var got []string
		out = func(p []byte) (int, error) { got = append(got, "1:"+string(p)); return len(p), nil }
		errOut = func(p []byte) (int, error) { got = append(got, "2:"+string(p)); return len(p), nil }
		assert.NilError(t, l.replay(context.Background(), rec, out, errOut))
		assert.Check(t, is.DeepEqual(got, []string{"1:out\n", "2:err\n"}))
	})
	t.Run("driver keeps nothing", func(t *testing.T) {
		none := *rec
		none.HostConfig = &container.HostConfig{LogConfig: container.LogConfig{Type: "none"}}
		_, err := l.stream(context.Background(), &none, LogsOptions{Stdout: true}, nil)
		assert.Check(t, errdefs.IsNotImplemented(err), "%v", err)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
