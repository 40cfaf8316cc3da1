package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// launcherMain is the test binary re-run as a short-lived "berthd": it
// launches and starts the container described by $BERTH_SHIMTEST_LAUNCHER
// (a JSON Config), prints the init pid and exits.
func launcherMain() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("BERTH_SHIMTEST_LAUNCHER")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Launch(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(c.Pid())
	return 0
}

// TestShimOutlivesClient launches from a process that then exits (berthd
// dying), reconnects from the state directory and drives the container.
func TestShimOutlivesClient(t *testing.T) {
	cfg := bundle(t, false, "sh", "-c", "echo started; exec sleep 600")
	b, err := json.Marshal(cfg)
	assert.NilError(t, err)
	self, err := os.Executable()
	assert.NilError(t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "BERTH_SHIMTEST_LAUNCHER="+string(b))
	out, err := cmd.Output()
	assert.NilError(t, err, string(out))
	var pid int
	fmt.Sscan(string(out), &pid)
	assert.Assert(t, pid > 0)

	ctx, cancel := testCtx()
	defer cancel()
	c, err := Connect(ctx, cfg.StateDir)
	assert.NilError(t, err)
	assert.Equal(t, c.Pid(), pid)
	st, err := c.State(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, "running")
	assert.Assert(t, processAlive(c.ShimPid()))

	// A client dropped mid-Wait (berthd killed) does not disturb the shim.
	wctx, wcancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); wcancel() }()
	_, err = c.Wait(wctx)
	assert.ErrorIs(t, err, context.Canceled)

	c2, err := Connect(ctx, cfg.StateDir)
	assert.NilError(t, err)
	// the echo runs after the start, and its line reaches the log after it
	// ran: on a loaded machine, not always by now
	var o string
	pollUntil(t, "the container's output is in its log", func() bool { o, _ = readLog(t, cfg.LogPath); return o != "" })
	assert.Equal(t, o, "started\n")
	es := stopContainer(t, c2, cfg)
	assert.Equal(t, es.Code, 137)

	// The shim is gone: Connect says so, the status stays readable.
	_, err = Connect(ctx, cfg.StateDir)
	assert.ErrorContains(t, err, "gone")
	got, ok, err := ReadExit(cfg.StateDir)
	assert.NilError(t, err)
	assert.Assert(t, ok)
	assert.Equal(t, got.Code, 137)
}

// shimsOf returns the live berth-shim processes serving stateDir.
func shimsOf(stateDir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 2 && strings.Contains(filepath.Base(args[0]), "berth-shim") && args[1] == stateDir && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestExitGrace: an exit nobody releases ends the shim after the grace period.
func TestExitGrace(t *testing.T) {
	cfg := bundle(t, false, "true")
	cfg.ExitGrace = 200 * time.Millisecond
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	_, err = c.Wait(ctx)
	assert.NilError(t, err)
	assertGone(t, cfg, c.ShimPid())
}

// TestKillBeforeStart: a created container that is never started (docker
// rm of a created container) is killed and cleaned up.
func TestKillBeforeStart(t *testing.T) {
	cfg := bundle(t, false, "echo", "never")
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	st, err := c.State(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, "created")
	es := stopContainer(t, c, cfg)
	assert.Equal(t, es.Code, 137)
	o, _ := readLog(t, cfg.LogPath)
	assert.Equal(t, o, "")
}

// TestLaunchCanceled: a Launch whose ctx ends leaves nothing behind.
func TestLaunchCanceled(t *testing.T) {
	cfg := bundle(t, false, "true")
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := Launch(ctx, cfg)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	pollUntil(t, "the abandoned shim is gone", func() bool { return len(shimsOf(cfg.StateDir)) == 0 })
	assertGone(t, cfg, 0)
}
