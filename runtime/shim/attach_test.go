package shim

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"

	"github.com/berthd/berth/runtime/monitor"
)

// blockingWriter stops reading (blocks) until released: a client that went
// quiet without closing its connection.
type blockingWriter struct{ release chan struct{} }

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

// TestSlowAttachClient: a client that stops reading is dropped; the
// container and the other clients go on at full speed.
func TestSlowAttachClient(t *testing.T) {
	line := strings.Repeat("x", 499) + "\n"
	cfg := bundle(t, false, "sh", "-c", "i=0; while [ $i -lt 6000 ]; do echo "+strings.TrimSuffix(line, "\n")+"; i=$((i+1)); done")
	// the test releases the shim after reading the 3 MB log back: on a
	// loaded machine (and under -race) later than the default grace of 5 s
	// after the exit, when the shim has left by itself
	cfg.ExitGrace = time.Minute
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)

	slow := &blockingWriter{release: make(chan struct{})}
	var fast bytes.Buffer
	var wg sync.WaitGroup
	var slowErr, fastErr error
	for i, w := range []io.Writer{slow, &fast} {
		attached := make(chan struct{})
		wg.Add(1)
		go func(i int, w io.Writer) {
			defer wg.Done()
			err := c.Attach(ctx, AttachOptions{Streams: monitor.Streams{Stdout: w}, OnAttached: func() { close(attached) }})
			if i == 0 {
				slowErr = err
			} else {
				fastErr = err
			}
		}(i, w)
		<-attached
	}
	start := time.Now()
	assert.NilError(t, c.Start(ctx))
	st, err := c.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Code, 0)
	t.Logf("3 MB of output with a stuck client attached: container done in %v", time.Since(start))
	close(slow.release)
	wg.Wait()
	assert.NilError(t, fastErr)
	assert.Equal(t, fast.Len(), 6000*len(line))
	t.Logf("stuck client's attach ended with: %v", slowErr)
	o, _ := readLog(t, cfg.LogPath)
	assert.Equal(t, len(o), 6000*len(line))
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
}

// TestAttachAfterExit: attaching to an exited container ends at once.
func TestAttachAfterExit(t *testing.T) {
	cfg := bundle(t, false, "true")
	cfg.ExitGrace = 10 * time.Second
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	_, err = c.Wait(ctx)
	assert.NilError(t, err)
	assert.NilError(t, c.Attach(ctx, AttachOptions{Streams: monitor.Streams{Stdout: io.Discard}}))
	st, err := c.State(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, "stopped")
	assert.Assert(t, st.Exit != nil)
	assert.Assert(t, errdefs.IsConflict(c.Kill(ctx, 15)))
	assert.Assert(t, errdefs.IsConflict(c.Start(ctx)))
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
}

func TestRequestErrors(t *testing.T) {
	c, cfg := runningContainer(t)
	ctx, cancel := testCtx()
	defer cancel()
	assert.Assert(t, errdefs.IsConflict(c.Start(ctx)))
	assert.Assert(t, errdefs.IsInvalidArgument(c.Kill(ctx, 0)))
	assert.Assert(t, errdefs.IsInvalidArgument(c.Resize(ctx, 10, 10))) // no terminal
	assert.Assert(t, errdefs.IsConflict(c.Release(ctx)))
	_, err := c.Exec(ctx, monitor.ExecConfig{ID: "", ProcessJSON: processJSON(t, false, "true")})
	assert.Assert(t, errdefs.IsInvalidArgument(err))
	stopContainer(t, c, cfg)
	_, err = Connect(ctx, cfg.StateDir)
	assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
}

// TestOOMKilled: a container killed by the OOM killer in its memory cgroup
// is reported as such (memory.oom_control's oom_kill counter).
func TestOOMKilled(t *testing.T) {
	cfg := bundle(t, false, "sh", "-c", "x=$(yes | head -c 200000000)")
	limit := int64(16 << 20)
	path := filepath.Join(cfg.Bundle, "config.json")
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	var spec specs.Spec
	assert.NilError(t, json.Unmarshal(b, &spec))
	spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	b, err = json.Marshal(&spec)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(path, b, 0o644))
	st := run(t, cfg)
	assert.Assert(t, st.OOMKilled, "%+v", st)
	assert.Equal(t, st.Code, 137)
}
