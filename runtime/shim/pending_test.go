package shim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/berthd/berth/runtime/logdriver"
)

// waitMonitors waits until n monitors serve (or wait for) dir.
func waitMonitors(t *testing.T, dir string, n int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if got := len(monitorsOf(dir)); got != n {
			return poll.Continue("%d monitors of %s, want %d", got, dir, n)
		}
		return poll.Success()
	}, poll.WithTimeout(time.Minute), poll.WithDelay(5*time.Millisecond))
}

// A spawned shim that is never launched (the start failed in a later step,
// or berthd went away) exits having made nothing: no runtime state, no
// socket, no report; Close returns once it has. Three times; closing again
// does nothing, and a closed Pending cannot be launched.
func TestPendingClosed(t *testing.T) {
	for round := 0; round < 3; round++ {
		cfg := bundle(t, false, "echo", "hi")
		p, err := Spawn(cfg.StateDir, cfg.ShimBinary, "")
		assert.NilError(t, err)
		waitMonitors(t, cfg.StateDir, 1)
		p.Close()
		assert.Check(t, is.Len(monitorsOf(cfg.StateDir), 0), "round %d: the monitor outlived Close", round)
		p.Close()
		ctx, cancel := testCtx()
		_, err = p.Launch(ctx, cfg)
		cancel()
		assert.Check(t, errdefs.IsInvalidArgument(err), "round %d: %v", round, err)
		for _, f := range []string{"shim.sock", "shim.json", "init.pid"} {
			_, err := os.Stat(filepath.Join(cfg.StateDir, f))
			assert.Check(t, os.IsNotExist(err), "round %d: %s left behind", round, f)
		}
		out, err := exec.Command("runc", "--root", env.runcRoot, "list", "-q").CombinedOutput()
		assert.NilError(t, err, string(out))
		assert.Check(t, !strings.Contains(string(out), cfg.ID), "round %d: runc lists %s", round, cfg.ID)
	}
}

// A spawned shim runs the container it is launched with, as Launch does,
// and is used up by that; a launch for another state directory is refused
// and ends the shim.
func TestPendingLaunch(t *testing.T) {
	cfg := bundle(t, false, "echo", "hi")
	p, err := Spawn(cfg.StateDir, cfg.ShimBinary, "")
	assert.NilError(t, err)
	ctx, cancel := testCtx()
	defer cancel()
	c, err := p.Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	st, err := c.Wait(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Code, 0))
	stdout, _ := readLog(t, cfg.LogPath)
	assert.Check(t, is.Equal(stdout, "hi\n"))
	_, err = p.Launch(ctx, cfg)
	assert.Check(t, errdefs.IsInvalidArgument(err), "launched twice: %v", err)
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())

	other := bundle(t, false, "echo", "hi")
	p, err = Spawn(other.StateDir, other.ShimBinary, "")
	assert.NilError(t, err)
	_, err = p.Launch(ctx, cfg)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.Len(monitorsOf(other.StateDir), 0), "the refused monitor runs on")
}

// Monitors.Prepare picks the shim build by the logging driver, as Launch
// does, and its Pending launches through the Monitors' runtimes.
func TestMonitorsPrepare(t *testing.T) {
	m := testMonitors(t)
	cfg := bundle(t, false, "echo", "hi")
	mc := monitorConfig(cfg)
	p, err := m.Prepare(t.Context(), cfg.StateDir, logdriver.Config{Driver: "json-file", Path: cfg.LogPath})
	assert.NilError(t, err)
	ctx, cancel := testCtx()
	defer cancel()
	tk, err := p.Launch(ctx, mc)
	assert.NilError(t, err)
	p.Close() // after Launch: nothing
	assert.NilError(t, tk.Start(ctx))
	st, err := tk.Wait(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Code, 0))
	assert.NilError(t, tk.Close())

	bin, name := m.binary("fluentd")
	assert.Check(t, is.Equal(bin, env.testShimBin+"-remote"))
	assert.Check(t, is.Equal(name, filepath.Base(env.testShimBin)))
	bin, name = m.binary("json-file")
	assert.Check(t, is.Equal(bin, env.testShimBin))
	assert.Check(t, is.Equal(name, ""))
}
