package shim

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/monitor"
)

// testRuntimes is the host's runc under the tests' root, by any name but
// "nosuch".
type testRuntimes struct{}

func (testRuntimes) Lookup(name string) (Runtime, error) {
	if name == "nosuch" {
		return Runtime{}, errdefs.ErrInvalidArgument.WithMessage("unknown or invalid runtime name: nosuch")
	}
	return Runtime{Path: "runc", Root: env.runcRoot, FastExec: true}, nil
}

// testMonitors are Monitors running the tests' shim; an exited container's
// shim waits for its release as long as a test may take, so that what a
// test checks after an exit is not raced by the shim's own exit.
func testMonitors(t *testing.T) *Monitors {
	t.Helper()
	m, err := NewMonitors(env.testShimBin, testRuntimes{})
	assert.NilError(t, err)
	m.exitGrace = time.Minute
	return m
}

// monitorConfig is the monitor's view of a test bundle.
func monitorConfig(cfg Config) monitor.Config {
	return monitor.Config{
		ID: cfg.ID, Bundle: cfg.Bundle, StateDir: cfg.StateDir, Terminal: cfg.Terminal,
		Log: logdriver.Config{Driver: "json-file", Path: cfg.LogPath},
	}
}

// launched launches cfg through m and returns the task and its shim's pid.
func launched(t *testing.T, m *Monitors, cfg Config) (monitor.Task, int) {
	t.Helper()
	ctx, cancel := testCtx()
	defer cancel()
	tk, err := m.Launch(ctx, monitorConfig(cfg))
	assert.NilError(t, err)
	assert.Assert(t, tk.Pid() > 0)
	return tk, tk.(*task).c.ShimPid()
}

func TestNewMonitorsChecksDeps(t *testing.T) {
	_, err := NewMonitors("berth-shim", testRuntimes{})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = NewMonitors("/usr/bin/berth-shim", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
}

func TestMonitorsLaunchUnknownRuntime(t *testing.T) {
	cfg := bundle(t, false, "true")
	mc := monitorConfig(cfg)
	mc.Runtime = "nosuch"
	ctx, cancel := testCtx()
	defer cancel()
	_, err := testMonitors(t).Launch(ctx, mc)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.ErrorContains(t, err, "unknown or invalid runtime name: nosuch")
	_, err = os.Stat(cfg.StateDir)
	assert.Check(t, os.IsNotExist(err), "no shim was started")
}

// TestMonitorsCloseKillsWaitsReleases: Close of a container that is still
// there (created, or running) kills it, and the shim exits without waiting
// out its grace period; the exit is recorded for ReadExit.
func TestMonitorsCloseKillsWaitsReleases(t *testing.T) {
	m := testMonitors(t)
	for _, start := range []bool{false, true} {
		name := map[bool]string{false: "created", true: "running"}[start]
		t.Run(name, func(t *testing.T) {
			cfg := bundle(t, false, "sleep", "600")
			tk, shimPid := launched(t, m, cfg)
			if start {
				ctx, cancel := testCtx()
				defer cancel()
				assert.NilError(t, tk.Start(ctx))
			}
			assert.NilError(t, tk.Close())
			assertGone(t, cfg, shimPid)
			st, ok, err := m.ReadExit(cfg.StateDir)
			assert.NilError(t, err)
			assert.Assert(t, ok)
			assert.Equal(t, st.Code, 137)
			assert.NilError(t, tk.Close(), "a second Close finds the shim gone: not an error")
		})
	}
}

// TestMonitorsConnect: a running container's monitor is reconnected; one
// whose container exited is released and reported not found.
func TestMonitorsConnect(t *testing.T) {
	m := testMonitors(t)
	ctx, cancel := testCtx()
	defer cancel()
	cfg := bundle(t, false, "sh", "-c", "read x; exit 3")
	mc := monitorConfig(cfg)
	mc.OpenStdin = true
	tk, err := m.Launch(ctx, mc)
	assert.NilError(t, err)
	shimPid := tk.(*task).c.ShimPid()
	assert.NilError(t, tk.Start(ctx))

	again, err := m.Connect(ctx, cfg.StateDir)
	assert.NilError(t, err)
	assert.Equal(t, again.Pid(), tk.Pid())
	pr, pw := io.Pipe()
	wait, err := again.Attach(ctx, monitor.Streams{Stdin: pr, Stdout: io.Discard})
	assert.NilError(t, err)
	_, err = pw.Write([]byte("go\n"))
	assert.NilError(t, err)
	assert.NilError(t, wait())
	st, err := again.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Code, 3)
	pw.Close()

	_, err = m.Connect(ctx, cfg.StateDir)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "container already exited")
	assertGone(t, cfg, shimPid) // released: well before its minute of grace
	got, ok, err := m.ReadExit(cfg.StateDir)
	assert.NilError(t, err)
	assert.Assert(t, ok)
	assert.Equal(t, got.Code, 3)

	_, err = m.Connect(ctx, cfg.StateDir)
	assert.Check(t, errdefs.IsUnavailable(err), "no shim at all: %v", err)
}

// TestMonitorsKillStopped: killing a container that is not running is a
// conflict in dockerd's words.
func TestMonitorsKillStopped(t *testing.T) {
	m := testMonitors(t)
	cfg := bundle(t, false, "true")
	tk, shimPid := launched(t, m, cfg)
	ctx, cancel := testCtx()
	defer cancel()
	assert.NilError(t, tk.Start(ctx))
	_, err := tk.Wait(ctx)
	assert.NilError(t, err)
	err = tk.Kill(ctx, syscall.SIGTERM)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "container is not running")
	assert.Check(t, errdefs.IsInvalidArgument(tk.Kill(ctx, 0)), "other errors pass through")
	assert.NilError(t, tk.Close())
	assertGone(t, cfg, shimPid)
}

// TestMonitorsResize: a container without a terminal ignores a resize (as
// dockerd does); one with a terminal gets it; an exited one refuses it.
func TestMonitorsResize(t *testing.T) {
	m := testMonitors(t)
	ctx, cancel := testCtx()
	defer cancel()
	t.Run("no terminal", func(t *testing.T) {
		cfg := bundle(t, false, "sleep", "600")
		tk, shimPid := launched(t, m, cfg)
		assert.NilError(t, tk.Start(ctx))
		assert.NilError(t, tk.Resize(ctx, 40, 132))
		assert.NilError(t, tk.Close())
		assertGone(t, cfg, shimPid)
	})
	t.Run("terminal", func(t *testing.T) {
		cfg := bundle(t, true, "sh", "-c", "read x; stty size")
		mc := monitorConfig(cfg)
		mc.OpenStdin, mc.ConsoleSize = true, monitor.ConsoleSize{24, 80}
		tk, err := m.Launch(ctx, mc)
		assert.NilError(t, err)
		shimPid := tk.(*task).c.ShimPid()
		var out syncBuffer
		pr, pw := io.Pipe()
		wait, err := tk.Attach(ctx, monitor.Streams{Stdin: pr, Stdout: &out})
		assert.NilError(t, err)
		assert.NilError(t, tk.Start(ctx))
		assert.NilError(t, tk.Resize(ctx, 40, 132))
		_, err = pw.Write([]byte("x\r"))
		assert.NilError(t, err)
		assert.NilError(t, wait())
		assert.Check(t, is.Contains(out.String(), "40 132"))
		_, err = tk.Wait(ctx)
		assert.NilError(t, err)
		assert.Check(t, errdefs.IsConflict(tk.Resize(ctx, 10, 10)), "an exited container's resize is refused")
		pw.Close()
		assert.NilError(t, tk.Close())
		assertGone(t, cfg, shimPid)
	})
}

// TestMonitorsAttach: Attach returns once the shim has registered the
// streams, so output the container writes after it starts is all seen;
// attaching to an exited container ends at once, with nothing to stream.
func TestMonitorsAttach(t *testing.T) {
	m := testMonitors(t)
	ctx, cancel := testCtx()
	defer cancel()
	cfg := bundle(t, false, "sh", "-c", "echo out; echo err >&2")
	tk, shimPid := launched(t, m, cfg)
	var out, errb bytes.Buffer
	wait, err := tk.Attach(ctx, monitor.Streams{Stdout: &out, Stderr: &errb})
	assert.NilError(t, err)
	assert.NilError(t, tk.Start(ctx))
	assert.NilError(t, wait())
	assert.Equal(t, out.String(), "out\n")
	assert.Equal(t, errb.String(), "err\n")
	_, err = tk.Wait(ctx)
	assert.NilError(t, err)

	wait, err = tk.Attach(ctx, monitor.Streams{Stdout: &out})
	assert.NilError(t, err)
	assert.NilError(t, wait())
	assert.Equal(t, out.String(), "out\n")

	assert.NilError(t, tk.Close())
	assertGone(t, cfg, shimPid)
	_, err = tk.Attach(ctx, monitor.Streams{Stdout: &out})
	assert.Check(t, errdefs.IsUnavailable(err), "a gone shim: %v", err)
}

// TestMonitorsExec: an exec through the tk runs with its streams and
// terminal size, and resizes.
func TestMonitorsExec(t *testing.T) {
	m := testMonitors(t)
	ctx, cancel := testCtx()
	defer cancel()
	cfg := bundle(t, false, "sleep", "600")
	tk, shimPid := launched(t, m, cfg)
	assert.NilError(t, tk.Start(ctx))

	var out syncBuffer
	pr, pw := io.Pipe()
	defer pw.Close()
	x, err := tk.Exec(ctx, monitor.ExecConfig{ID: "t1", ProcessJSON: processJSON(t, true, "sh", "-c", "stty size; read x; stty size"),
		Terminal: true, ConsoleSize: monitor.ConsoleSize{20, 70}, Streams: monitor.Streams{Stdin: pr, Stdout: &out}})
	assert.NilError(t, err)
	assert.Assert(t, x.Pid() > 0)
	pollUntil(t, "the exec reports its first size", func() bool { return strings.Contains(out.String(), "20 70") })
	assert.NilError(t, x.Resize(ctx, 50, 60))
	_, err = pw.Write([]byte("x\r"))
	assert.NilError(t, err)
	code, err := x.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, code, 0)
	assert.Check(t, is.Contains(out.String(), "50 60"))

	_, err = tk.Exec(ctx, monitor.ExecConfig{ID: "t2", ProcessJSON: processJSON(t, false, "nosuchcmd")})
	var pe *ProcessError
	assert.Check(t, errors.As(err, &pe) && pe.ExitCode == 127, "%v", err)
	assert.NilError(t, tk.Close())
	assertGone(t, cfg, shimPid)
}
