package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/monitor"
	"github.com/berthd/berth/runtime/shim/proto"
)

// The monitor of a quiet container sleeps (cmd/berth-shim/sleep.go): it
// becomes berth-shim-sleep, and any output, request or the init's exit
// wakes it. These tests check that a sleeping monitor loses nothing: the
// container is driven through files in its /tmp, and after each step the
// monitor is let fall asleep again.

func asleep(shimPid int) bool {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", shimPid))
	return strings.HasSuffix(exe, "/berth-shim-sleep")
}

func waitAsleep(t *testing.T, c *Client) {
	t.Helper()
	pollUntilOr(t, "the monitor sleeps", func() bool { return asleep(c.ShimPid()) }, func() string { return monitorState(c) })
}

// monitorState is what a failed wait on a monitor shows: its binary, its
// descriptors and its log.
func monitorState(c *Client) string {
	pid := c.ShimPid()
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	var fds []string
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		dst, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		fds = append(fds, e.Name()+"="+dst)
	}
	log, _ := os.ReadFile(filepath.Join(c.StateDir(), "shim.log"))
	return fmt.Sprintf("monitor %d: %s, fds %v, shim.log:\n%s", pid, exe, fds, log)
}

// driver is a container that runs step i when /tmp/go<i> appears, doing
// what the file says.
const driver = `i=0
while :; do
  i=$((i+1))
  while [ ! -e /tmp/go$i ]; do sleep 0.01; done
  case $(cat /tmp/go$i) in
    line) echo "line $i";;
    err) echo "err $i" >&2;;
    burst) head -c 200000 /dev/zero | tr '\0' a; echo;;
    partial) printf "part-$i-";;
    exit) exit 3;;
  esac
done`

func step(t *testing.T, c *Client, i int, what string) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/root/tmp", c.Pid())
	tmp := filepath.Join(dir, ".go"+strconv.Itoa(i))
	assert.NilError(t, os.WriteFile(tmp, []byte(what), 0o644))
	assert.NilError(t, os.Rename(tmp, filepath.Join(dir, "go"+strconv.Itoa(i))))
}

// TestSleepingMonitorLosesNothing drives a container through random steps
// (a line, a line on stderr, 200 KB at once, a partial line, an exec, a
// state call, an attach), letting its monitor fall asleep before each, and
// checks the log, the exec's output and the exit, which reaches a Wait
// held since the start, across every sleep.
func TestSleepingMonitorLosesNothing(t *testing.T) {
	t.Setenv("BERTH_SHIM_SLEEP_AFTER", "20ms")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			cfg := bundle(t, tty, "sh", "-c", driver)
			ctx, cancel := testCtx()
			defer cancel()
			c, err := Launch(ctx, cfg)
			assert.NilError(t, err)
			assert.NilError(t, c.Start(ctx))
			waited := make(chan monitor.ExitStatus, 1)
			go func() {
				st, err := c.Wait(context.Background())
				if err != nil {
					t.Errorf("wait: %v", err)
				}
				waited <- st
			}()

			nl := "\n"
			if tty {
				nl = "\r\n"
			}
			var wantOut, wantErr strings.Builder
			partial := false
			i := 0
			for range 12 {
				if !partial {
					waitAsleep(t, c)
				}
				switch n := rng.Intn(7); {
				case n == 0 || partial:
					i++
					step(t, c, i, "line")
					wantOut.WriteString(fmt.Sprintf("line %d%s", i, nl))
					partial = false
				case n == 1:
					i++
					step(t, c, i, "err")
					if tty {
						wantOut.WriteString(fmt.Sprintf("err %d%s", i, nl))
					} else {
						wantErr.WriteString(fmt.Sprintf("err %d\n", i))
					}
				case n == 2:
					i++
					step(t, c, i, "burst")
					wantOut.WriteString(strings.Repeat("a", 200000) + nl)
				case n == 3:
					i++
					step(t, c, i, "partial")
					wantOut.WriteString(fmt.Sprintf("part-%d-", i))
					partial = true
					// the partial line rests in the sleeping monitor's state
					part := fmt.Sprintf("part-%d-", i)
					pollUntilOr(t, "the partial line sleeps with the monitor", func() bool {
						return asleep(c.ShimPid()) && strings.Contains(sleepingPending(cfg), part)
					}, func() string { return monitorState(c) })
				case n == 4:
					var out, errb bytes.Buffer
					e, err := c.Exec(ctx, monitor.ExecConfig{ID: "x" + strconv.Itoa(rng.Int()), ProcessJSON: processJSON(t, false, "sh", "-c", "echo exec-out; exit 5"),
						Streams: monitor.Streams{Stdout: &out, Stderr: &errb}})
					assert.NilError(t, err)
					code, err := e.Wait(ctx)
					assert.NilError(t, err)
					assert.Equal(t, code, 5)
					assert.Equal(t, out.String(), "exec-out\n")
				case n == 5:
					st, err := c.State(ctx)
					assert.NilError(t, err)
					assert.Equal(t, st.Status, "running")
				case n == 6:
					actx, acancel := context.WithTimeout(ctx, 50*time.Millisecond)
					err := c.Attach(actx, AttachOptions{Streams: monitor.Streams{Stdout: &bytes.Buffer{}}})
					acancel()
					assert.Assert(t, err == nil || ctx.Err() == nil, "attach: %v", err)
				}
			}
			waitAsleep(t, c)
			i++
			step(t, c, i, "exit")
			var st monitor.ExitStatus
			select {
			case st = <-waited:
			case <-ctx.Done():
				t.Fatal("the held Wait got no exit")
			}
			assert.Equal(t, st.Code, 3)
			o, e := readLog(t, cfg.LogPath)
			assert.Equal(t, o, wantOut.String())
			assert.Equal(t, e, wantErr.String())
			assert.NilError(t, c.Release(ctx))
			assertGone(t, cfg, c.ShimPid())
		})
	}
}

// TestSleepingMonitorSeesKill: the init killed from outside while its
// monitor sleeps; the exit is recorded, and a client that connects after
// gets it.
func TestSleepingMonitorSeesKill(t *testing.T) {
	t.Setenv("BERTH_SHIM_SLEEP_AFTER", "20ms")
	c, cfg := runningContainer(t)
	waitAsleep(t, c)
	assert.NilError(t, syscall.Kill(c.Pid(), syscall.SIGKILL))
	ctx, cancel := testCtx()
	defer cancel()
	c2, err := Connect(ctx, cfg.StateDir)
	assert.NilError(t, err)
	st, err := c2.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Code, 137)
	assert.NilError(t, c2.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
}

// TestSleepingMonitorManyAtOnce: many quiet containers sleep, are woken at
// once by a Kill each, and all report their exit.
func TestSleepingMonitorManyAtOnce(t *testing.T) {
	t.Setenv("BERTH_SHIM_SLEEP_AFTER", "20ms")
	const n = 8
	cs := make([]*Client, n)
	cfgs := make([]Config, n)
	for i := range cs {
		cs[i], cfgs[i] = runningContainer(t)
	}
	for _, c := range cs {
		waitAsleep(t, c)
	}
	ctx, cancel := testCtx()
	defer cancel()
	errs := make(chan error, n)
	for i, c := range cs {
		go func() {
			if err := c.Kill(ctx, syscall.Signal(9)); err != nil {
				errs <- err
				return
			}
			st, err := c.Wait(ctx)
			if err == nil && st.Code != 137 {
				err = fmt.Errorf("container %d: exit %d", i, st.Code)
			}
			errs <- err
		}()
	}
	for range cs {
		assert.NilError(t, <-errs)
	}
	for i, c := range cs {
		assert.NilError(t, c.Release(ctx))
		assertGone(t, cfgs[i], c.ShimPid())
	}
}

// TestSleeperAnswersRestart: what berthd's restart asks of each monitor
// (Connect's state, then a held Wait) is answered by the sleeping form
// itself, so a restart does not wake every monitor; a Wait client that
// leaves is let go; a request it does not answer (an exec) wakes the shim,
// which reads it; the held Waits get the exit.
func TestSleeperAnswersRestart(t *testing.T) {
	t.Setenv("BERTH_SHIM_SLEEP_AFTER", "20ms")
	c, cfg := runningContainer(t)
	waitAsleep(t, c)
	ctx, cancel := testCtx()
	defer cancel()
	for range 3 {
		c2, err := Connect(ctx, cfg.StateDir)
		assert.NilError(t, err)
		assert.Equal(t, c2.Pid(), c.Pid())
		assert.Equal(t, c2.ShimPid(), c.ShimPid())
		st, err := c2.State(ctx)
		assert.NilError(t, err)
		assert.Equal(t, st.Status, "running")
		assert.Assert(t, asleep(c.ShimPid()), "a state request woke the monitor")
	}
	// a Wait whose client leaves, then one that is held
	// (the sleeper's descriptors tell when it holds a connection)
	// the listener only (a state connection is closed just after its
	// answer: the count may lag the client)
	holds := func(n int) func() bool { return func() bool { return sockets(t, c.ShimPid()) == 1+n } }
	pollUntilOr(t, "the sleeper holds no connection", holds(0), func() string { return monitorState(c) })
	lctx, lcancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, err := c.Wait(lctx); left <- err }()
	pollUntilOr(t, "the sleeper holds the wait", holds(1), func() string { return monitorState(c) })
	lcancel()
	assert.ErrorIs(t, <-left, context.Canceled)
	pollUntilOr(t, "the sleeper lets the wait go", holds(0), func() string { return monitorState(c) })
	assert.Assert(t, asleep(c.ShimPid()), "a wait woke the monitor")
	held := make(chan monitor.ExitStatus, 1)
	go func() {
		st, err := c.Wait(context.Background())
		if err != nil {
			t.Errorf("held wait: %v", err)
		}
		held <- st
	}()
	pollUntilOr(t, "the sleeper holds the wait", holds(1), func() string { return monitorState(c) })
	assert.Assert(t, asleep(c.ShimPid()), "a wait woke the monitor")

	// a Wait held by the shim itself across a sleep, whose client then
	// leaves (berthd killed), lets the monitor sleep on
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	restartLeft := make(chan error, 1)
	go func() { _, err := c.Wait(rctx); restartLeft <- err }()
	pollUntilOr(t, "the sleeper holds the second wait", holds(2), func() string { return monitorState(c) })

	var out bytes.Buffer
	e, err := c.Exec(ctx, monitor.ExecConfig{ID: "e1", ProcessJSON: processJSON(t, false, "echo", "woken"), Streams: monitor.Streams{Stdout: &out}})
	assert.NilError(t, err)
	code, err := e.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, code, 0)
	assert.Equal(t, out.String(), "woken\n")
	waitAsleep(t, c) // with the held Waits taken over and given back
	rcancel()
	assert.ErrorIs(t, <-restartLeft, context.Canceled)
	pollUntilOr(t, "the sleeper lets the shim's wait go", holds(1), func() string { return monitorState(c) })
	assert.Assert(t, asleep(c.ShimPid()), "a wait's client leaving woke the monitor")
	assert.NilError(t, syscall.Kill(c.Pid(), syscall.SIGKILL))
	select {
	case st := <-held:
		assert.Equal(t, st.Code, 137)
	case <-ctx.Done():
		t.Fatal("the held Wait got no exit")
	}
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
}

// TestSleeperRequestsMatchProto: berth-shim-sleep matches berthd's state
// and wait requests byte for byte; they must be what the client sends.
func TestSleeperRequestsMatchProto(t *testing.T) {
	src, err := os.ReadFile("../../cmd/berth-shim-sleep/sleep.c")
	assert.NilError(t, err)
	for _, op := range []string{proto.OpState, proto.OpWait} {
		b, err := json.Marshal(proto.Request{V: proto.Version, Op: op})
		assert.NilError(t, err)
		c := strings.ReplaceAll(string(b), `"`, `\"`) + `\n"`
		assert.Assert(t, strings.Contains(string(src), c), "sleep.c does not match %s", b)
	}
}

// sockets counts a process's sockets.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	assert.NilError(t, err)
	n := 0
	for _, e := range ents {
		if dst, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); strings.HasPrefix(dst, "socket:") {
			n++
		}
	}
	return n
}

// sleepingPending is the partial lines a sleeping monitor keeps.
func sleepingPending(cfg Config) string {
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, "sleep.json"))
	if err != nil {
		return ""
	}
	var st struct{ Outputs []struct{ Pending []byte } }
	if json.Unmarshal(b, &st) != nil {
		return ""
	}
	var p strings.Builder
	for _, o := range st.Outputs {
		p.Write(o.Pending)
	}
	return p.String()
}

// TestMonitorWithAQueueStaysAwake: a driver in non-blocking mode keeps
// its queue in the monitor, which must not sleep, and says nothing about
// it (no line per attempt in shim.log). It is watched for 30 times the
// quiet time it would otherwise sleep after.
func TestMonitorWithAQueueStaysAwake(t *testing.T) {
	t.Setenv("BERTH_SHIM_SLEEP_AFTER", "20ms")
	cfg := bundle(t, false, "sleep", "600")
	cfg.Log = &logdriver.Config{Driver: "json-file", Opts: map[string]string{"mode": "non-blocking"}, Path: cfg.LogPath}
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	for range 30 {
		assert.Assert(t, !asleep(c.ShimPid()), "a monitor with a queue slept")
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(cfg.StateDir, "shim.log"))
	assert.Assert(t, !strings.Contains(string(log), "sleep"), "shim.log: %s", log)
	stopContainer(t, c, cfg)
}
