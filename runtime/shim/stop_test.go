package shim

import (
	"context"
	"errors"
	"fmt"
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
)

// blockingRuntime is runc whose create waits until the file go exists,
// after touching the file in (the monitor is then mid-launch).
func blockingRuntime(t *testing.T) (bin, in, goFile string) {
	t.Helper()
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	dir := t.TempDir()
	bin, in, goFile = filepath.Join(dir, "runc-blocking"), filepath.Join(dir, "in"), filepath.Join(dir, "go")
	script := fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" create \"*)\n\ttouch %s\n\twhile [ ! -e %s ]; do sleep 0.01; done\nesac\nexec %s \"$@\"\n", in, goFile, runc)
	assert.NilError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, in, goFile
}

// processesWith lists the pids whose command line holds s.
func processesWith(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) && e.Name() != fmt.Sprint(os.Getpid()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A launch cut while the runtime creates (berthd gone: nobody reads the
// monitor's report) leaves a monitor Connect cannot reach; Stop ends it and
// the runtime's create with it, so the container is never made. Three
// times; Stop of a directory without a monitor, or of another one, does
// nothing.
func TestStopCutLaunch(t *testing.T) {
	m := testMonitors(t)
	bystander := bundle(t, false, "sleep", "600")
	_, bystanderPid := launched(t, m, bystander)
	for round := 0; round < 3; round++ {
		cfg := bundle(t, false, "sleep", "600")
		rt, in, goFile := blockingRuntime(t)
		cfg.RuntimeBinary = rt
		ctx, cancel := context.WithCancel(context.Background())
		launched := make(chan error, 1)
		go func() {
			_, err := Launch(ctx, cfg)
			launched <- err
		}()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if _, err := os.Stat(in); err != nil {
				return poll.Continue("the runtime's create has not begun")
			}
			return poll.Success()
		}, poll.WithTimeout(time.Minute))
		cancel() // as berthd's death: the report pipe is closed
		assert.Check(t, errors.Is(<-launched, context.Canceled))
		assert.Assert(t, is.Len(monitorsOf(cfg.StateDir), 1), "round %d: the monitor runs on", round)

		sctx, scancel := testCtx()
		_, err := Connect(sctx, cfg.StateDir)
		assert.Check(t, errdefs.IsUnavailable(err), "round %d: %v", round, err)
		assert.NilError(t, m.Stop(sctx, cfg.StateDir))
		scancel()
		assert.Check(t, is.Len(monitorsOf(cfg.StateDir), 0), "round %d: the monitor outlived Stop", round)
		// Stop waits for the monitor; the runtime's create, killed with
		// its group, ends a moment later
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if left := processesWith(rt); len(left) > 0 {
				return poll.Continue("round %d: the runtime's create %v outlived Stop's kill", round, left)
			}
			return poll.Success()
		}, poll.WithTimeout(10*time.Second), poll.WithDelay(5*time.Millisecond))
		assert.NilError(t, os.WriteFile(goFile, nil, 0o644)) // nothing is left to go on
		_, err = os.Stat(filepath.Join(env.runcRoot, cfg.ID))
		assert.Check(t, os.IsNotExist(err), "round %d: the runtime made the container: %v", round, err)
		assert.NilError(t, m.Stop(context.Background(), cfg.StateDir)) // again: nothing there
	}
	assert.NilError(t, m.Stop(context.Background(), filepath.Join(t.TempDir(), "none")))
	_, err := os.Stat(fmt.Sprintf("/proc/%d", bystanderPid))
	assert.Check(t, err, "another container's monitor was stopped")
}
