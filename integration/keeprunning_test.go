package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Containers keep running through berthd crashes; what happened while it
// was down is recorded truthfully; nothing is left half-made.

// tickerCmd serves /www over HTTP and logs a numbered line every 100 ms.
func tickerCmd(name string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + name + " > /www/index.html && httpd -p 80 -h /www && " +
		"i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done"}
}

// checkLines fails unless out is "line 1" .. "line n" with n >= min.
func checkLines(t *testing.T, name, out string, min int) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		if l != "line "+strconv.Itoa(i+1) {
			t.Errorf("%s: log line %d is %q: the log has a gap", name, i+1, l)
			return 0
		}
	}
	assert.Check(t, len(lines) >= min, "%s: %d lines, want at least %d", name, len(lines), min)
	return len(lines)
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// The done-when: 20 running containers, SIGKILL berthd, start it
// again: all 20 still run (same pids), their logs are complete, exec
// works, published ports answer and DNS answers; a container that exited
// while berthd was down shows its real exit code and a die event.
func TestTwentySurviveDaemonKill(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "kr")
	const n = 20
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			r := d.Docker(append([]string{"run", "-d", "--name", name, "--network", "kr", "-p", "127.0.0.1::80", "busybox"}, tickerCmd(name)...)...)
			if r.ExitCode != 0 {
				errs <- name + ": " + r.Combined()
			}
		}(names[i])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// "late" exits when the test says so: while berthd is down
	d.DockerOK(t, "run", "-d", "--name", "late", "busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; exit 7")
	latePid := inspectF(t, d, "{{.State.Pid}}", "late")
	pids := map[string]string{}
	for _, name := range names {
		pids[name] = inspectF(t, d, "{{.State.Pid}}", name)
	}
	before := map[string]int{}
	for _, name := range names {
		before[name] = checkLines(t, name, d.DockerOK(t, "logs", name), 1)
	}
	held := testenv.HeldOf(d.Inventory(t))
	logPaths := map[string]string{}
	for _, name := range names {
		logPaths[name] = inspectF(t, d, "{{.LogPath}}", name)
	}

	killedAt := time.Now()
	d.Kill(t)
	assert.NilError(t, os.WriteFile("/proc/"+latePid+"/root/tmp/go", nil, 0o644))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if b, err := os.ReadFile("/proc/" + latePid + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
			return poll.Continue("late (pid %s) still runs", latePid)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(20*time.Millisecond))
	// the tickers keep logging while berthd is down: 10 more lines each
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		for _, name := range names {
			b, err := os.ReadFile(logPaths[name])
			if err != nil {
				return poll.Error(err)
			}
			if n := strings.Count(string(b), "\n"); n < before[name]+10 {
				return poll.Continue("%s has logged %d lines, waiting for %d", name, n, before[name]+10)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(50*time.Millisecond))
	startedAt := time.Now()
	d.Start(t)
	restarted := time.Now()

	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.ExitCode}}", "late"), "exited 7")
	fin, err := time.Parse(time.RFC3339Nano, inspectF(t, d, "{{.State.FinishedAt}}", "late"))
	assert.NilError(t, err)
	assert.Check(t, fin.After(killedAt) && fin.Before(restarted), "FinishedAt %v not while berthd was down (%v..%v)", fin, killedAt, restarted)
	evs := d.DockerOK(t, "events", "--since", strconv.FormatInt(killedAt.Unix(), 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=late", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
	assert.Check(t, is.Contains(evs, "die 7"))

	for _, name := range names {
		assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.Pid}}", name), "running "+pids[name], name)
		checkLines(t, name, d.DockerOK(t, "logs", name), before[name]+10) // logged while berthd was down
		port := strings.TrimSpace(d.DockerOK(t, "port", name, "80"))
		body, err := httpGet("http://" + port + "/")
		assert.Check(t, err)
		assert.Check(t, is.Equal(body, name))
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "exec", "c1", "echo", "exec-ok")), "exec-ok")
	ip := inspectF(t, d, "{{.NetworkSettings.Networks.kr.IPAddress}}", "c2")
	out := d.DockerOK(t, "exec", "c1", "nslookup", "c2")
	assert.Check(t, is.Contains(out, ip))
	if m := regexp.MustCompile(`restored \d+ containers in ([^:]+):`).FindAllStringSubmatch(d.Log(), -1); len(m) > 0 {
		t.Logf("berthd restored %d containers in %s (log); API answered %v after start", n+1, m[len(m)-1][1], restarted.Sub(startedAt))
	}
	// the exited container's monitor, mounts and network state are gone, nothing else
	want := testenv.Held{
		Mounts: held.Mounts - 2, // its root filesystem and netns file
		Netns:  n, Veths: n, Rules: held.Rules, Ports: n, Endpoints: n, DNSRecords: held.DNSRecords - 1,
		Addresses: n, Cgroups: n, Monitors: n,
	}
	d.WaitHeld(t, want, 30*time.Second)
}

// A monitor killed while berthd runs: berthd notices, kills the container
// (it must not run unsupervised) and records the exit.
func TestMonitorKilledWhileDaemonRuns(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "orphaned", "busybox", "sleep", "300"))
	pid, _ := strconv.Atoi(inspectF(t, d, "{{.State.Pid}}", "orphaned"))
	shim := shimOf(t, d, id)
	assert.NilError(t, syscall.Kill(shim, syscall.SIGKILL))
	waitInspect(t, d, "{{.State.Status}} {{.State.ExitCode}}", "orphaned", "exited 137", 30*time.Second)
	assert.Check(t, is.Contains(inspectF(t, d, "{{.State.Error}}", "orphaned"), "monitor died"))
	assert.Check(t, !alive(pid), "container process %d still runs", pid)
	d.DockerOK(t, "rm", "orphaned")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if left := d.Leftovers(t, id); len(left) > 0 {
			return poll.Continue("left: %v", left)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
}

// A monitor killed while berthd is down: at start berthd finds no monitor
// and no recorded exit, kills the container and records it as exited.
func TestMonitorKilledWhileDaemonDown(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "orphaned", "busybox", "sleep", "300"))
	d.DockerOK(t, "run", "-d", "--name", "kept", "busybox", "sleep", "300")
	pid, _ := strconv.Atoi(inspectF(t, d, "{{.State.Pid}}", "orphaned"))
	d.Kill(t)
	assert.NilError(t, syscall.Kill(shimOf(t, d, id), syscall.SIGKILL))
	d.Start(t)
	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.ExitCode}}", "orphaned"), "exited 137")
	assert.Check(t, is.Contains(inspectF(t, d, "{{.State.Error}}", "orphaned"), "monitor died"))
	assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "kept"), "running")
	assert.Check(t, !alive(pid), "container process %d still runs", pid)
	assert.Check(t, is.Len(d.Leftovers(t, id), 0))
	// it can run again
	d.DockerOK(t, "start", "orphaned")
	assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "orphaned"), "running")
}

// shimOf is the pid of the monitor of container id.
func shimOf(t *testing.T, d *testenv.Daemon, id string) int {
	t.Helper()
	for _, pid := range d.ShimPids() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(b), id[:24]) {
			return pid
		}
	}
	t.Fatalf("no monitor for %s", id)
	return 0
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// A graceful stop (SIGTERM) of berthd leaves running containers running
// (same pid), and a container waiting for its next restart is restarted
// by its policy once berthd is back.
func TestGracefulRestartKeepsContainers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "steady", "-p", "127.0.0.1::80", "busybox", "httpd", "-f", "-p", "80")
	d.DockerOK(t, "run", "-d", "--name", "flaky", "--restart", "on-failure:4", "busybox", "sh", "-c", "sleep 0.3; exit 3")
	waitInspect(t, d, "{{.RestartCount}}", "flaky", "3", 30*time.Second) // its next restart is 800 ms away
	pid := inspectF(t, d, "{{.State.Pid}}", "steady")
	d.Restart(t, syscall.SIGTERM)
	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.Pid}}", "steady"), "running "+pid)
	port := strings.TrimSpace(d.DockerOK(t, "port", "steady", "80"))
	_, err := httpGet("http://" + port + "/")
	assert.NilError(t, err)
	// dockerd's rule at daemon start: an on-failure container that failed restarts, with its count reset
	waitInspect(t, d, "{{.State.Status}}", "flaky", "running", 30*time.Second)
	waitInspect(t, d, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", "flaky", "exited 3 4", 60*time.Second)
}
