package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Restart policies, checked against what dockerd 20.10 does (the anchor
// engine): see each test.

// inspectF formats one container with a Go template.
func inspectF(t *testing.T, d *testenv.Daemon, format, name string) string {
	t.Helper()
	return strings.TrimSpace(d.DockerOK(t, "inspect", "-f", format, name))
}

// waitInspect polls until the template gives want.
func waitInspect(t *testing.T, d *testenv.Daemon, format, name, want string, timeout time.Duration) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		r := d.Docker("inspect", "-f", format, name)
		if got := strings.TrimSpace(r.Stdout()); got != want {
			return poll.Continue("%s: %q, want %q %s", name, got, want, r.Stderr())
		}
		return poll.Success()
	}, poll.WithTimeout(timeout), poll.WithDelay(50*time.Millisecond))
}

// dockerd 20.10: on-failure:2 with a command that fails ends exited (1)
// with RestartCount 2, after die/start pairs and no "restart" event.
func TestRestartOnFailureMax(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	d.DockerOK(t, "run", "-d", "--name", "of2", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitInspect(t, d, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", "of2", "exited 1 2", 30*time.Second)
	// and it stays so
	time.Sleep(time.Second)
	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", "of2"), "exited 1 2")
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "-a", "--filter", "name=of2", "--format", "{{.Status}}"), "Exited (1)"))
	evs := d.DockerOK(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=of2", "--filter", "type=container", "--format", "{{.Action}}")
	assert.Equal(t, strings.Join(strings.Fields(evs), " "), "create start die start die start die")

	// a start by the user resets the count, as in dockerd
	d.DockerOK(t, "start", "of2")
	waitInspect(t, d, "{{.State.Status}} {{.RestartCount}}", "of2", "exited 2", 30*time.Second)
}

// dockerd: docker stop and docker kill end the container for good, whatever
// the policy; a crash of the process (here: killed from inside) restarts it.
func TestRestartNotAfterStopOrKill(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	for _, name := range []string{"stopped", "killed", "crashed"} {
		d.DockerOK(t, "run", "-d", "--name", name, "--restart", "always", "busybox", "sleep", "300")
	}
	d.DockerOK(t, "stop", "-t", "1", "stopped")
	d.DockerOK(t, "kill", "killed")
	pid := inspectF(t, d, "{{.State.Pid}}", "crashed")
	n, _ := strconv.Atoi(pid)
	assert.NilError(t, syscall.Kill(n, syscall.SIGKILL))
	waitInspect(t, d, "{{.State.Status}} {{.RestartCount}}", "crashed", "running 1", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.RestartCount}}", "stopped"), "exited 0")
	assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.RestartCount}}", "killed"), "exited 0")
}

// The rules dockerd 20.10 applies at daemon start (checked on the anchor
// engine, see the table): always comes back even when the user stopped or
// killed it; unless-stopped only when not stopped by the user; on-failure
// when the last exit was a failure under max (a `docker stop` that ended
// in SIGKILL counts: 137); never a container that was never started. In
// berth running containers simply keep running (live restore).
func TestRestartPoliciesAtDaemonStart(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	run := func(name, policy string, cmd ...string) {
		d.DockerOK(t, append([]string{"run", "-d", "--name", name, "--restart", policy, "busybox"}, cmd...)...)
	}
	run("al-stopped", "always", "sleep", "300")
	run("al-killed", "always", "sleep", "300")
	run("us-stopped", "unless-stopped", "sleep", "300")
	run("of-stopped", "on-failure", "sleep", "300")
	run("of-clean", "on-failure", "sh", "-c", `trap "exit 0" TERM; while :; do sleep 0.1; done`)
	run("of-spent", "on-failure:1", "sh", "-c", "exit 3")
	run("al-running", "always", "sleep", "300")
	run("no-running", "no", "sleep", "300")
	d.DockerOK(t, "create", "--name", "al-created", "--restart", "always", "busybox", "sleep", "300")
	d.DockerOK(t, "stop", "-t", "1", "al-stopped", "us-stopped", "of-stopped", "of-clean")
	d.DockerOK(t, "kill", "al-killed")
	waitInspect(t, d, "{{.State.Status}} {{.RestartCount}}", "of-spent", "exited 1", 30*time.Second)
	runningPid := inspectF(t, d, "{{.State.Pid}}", "al-running")

	d.Restart(t, syscall.SIGKILL)
	want := map[string]string{
		"al-stopped": "running 0",
		"al-killed":  "running 0",
		"us-stopped": "exited 137",
		"of-stopped": "running 0",
		"of-clean":   "exited 0",
		"of-spent":   "exited 3",
		"al-running": "running 0",
		"no-running": "running 0",
		"al-created": "created 0",
	}
	for name, w := range want {
		assert.Check(t, is.Equal(inspectF(t, d, "{{.State.Status}} {{.State.ExitCode}}", name), w), name)
	}
	assert.Equal(t, inspectF(t, d, "{{.State.Pid}}", "al-running"), runningPid, "a running container was restarted")
	assert.Equal(t, inspectF(t, d, "{{.RestartCount}}", "of-spent"), "1")
}

// dockerd's backoff: 100 ms doubling, so a command that fails at once is
// restarted about 7 times in 10 s, berthd stays cheap (CPU time measured
// from /proc) and responsive (docker ps).
func TestRestartLoopBackoff(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "flap", "--restart", "always", "busybox", "true")
	cpu0 := d.CPUTime(t)
	var lat []time.Duration
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		t0 := time.Now()
		d.DockerOK(t, "ps", "-a")
		lat = append(lat, time.Since(t0))
		time.Sleep(200 * time.Millisecond)
	}
	cpu := d.CPUTime(t) - cpu0
	count, _ := strconv.Atoi(inspectF(t, d, "{{.RestartCount}}", "flap"))
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	med := lat[len(lat)/2]
	t.Logf("restarts in 10 s: %d; berthd CPU: %v; docker ps median %v, max %v", count, cpu, med, lat[len(lat)-1])
	// the backoff bounds the count from above whatever the machine's speed
	// (100+200+...+3200 ms is 6.3 s for 6 restarts); a loaded machine makes
	// fewer, never more, but it goes on restarting
	assert.Check(t, count <= 9, "restarts: %d", count)
	waitInspect(t, d, "{{ge .RestartCount 3}}", "flap", "true", 60*time.Second)
	assert.Check(t, cpu < 1500*time.Millisecond, "berthd used %v of CPU in 10 s", cpu)
	// responsive, not fast: speed is make bench's business
	assert.Check(t, med < time.Second, "docker ps took %v (median)", med)
}

// docker update --restart takes effect for the next exit; resource limits
// reach the running container's cgroup.
func TestUpdateRestartAndResources(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "upd", "busybox", "sleep", "300")
	d.DockerOK(t, "update", "--restart", "on-failure:3", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "50", "upd")
	assert.Equal(t, inspectF(t, d, "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}", "upd"),
		"on-failure:3 67108864 500000000 50")
	id := inspectF(t, d, "{{.Id}}", "upd")
	cg := func(ctrl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, d.CgroupParent(), id, file))
		assert.NilError(t, err)
		return strings.TrimSpace(string(b))
	}
	assert.Equal(t, cg("memory", "memory.limit_in_bytes"), "67108864")
	assert.Equal(t, cg("cpu", "cpu.cfs_quota_us"), "50000")
	assert.Equal(t, cg("pids", "pids.max"), "50")

	pid, _ := strconv.Atoi(inspectF(t, d, "{{.State.Pid}}", "upd"))
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitInspect(t, d, "{{.State.Status}} {{.RestartCount}}", "upd", "running 1", 30*time.Second)
	// the new run has the updated limits from the start
	id2 := inspectF(t, d, "{{.Id}}", "upd")
	assert.Equal(t, id2, id)
	assert.Equal(t, cg("memory", "memory.limit_in_bytes"), "67108864")

	r := d.Docker("update", "--restart", "always", "--memory", "1m", "upd")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "Minimum memory limit allowed is 6MB"))
	// dockerd refuses memory alone above the swap limit in place
	r = d.Docker("update", "--memory", "256m", "upd")
	assert.Check(t, is.Contains(r.Stderr(), "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"))
	d.DockerOK(t, "update", "--memory", "32m", "upd")
	assert.Equal(t, cg("memory", "memory.limit_in_bytes"), "33554432")
	r = d.Docker("update", "--cpus", "0.5", "--cpu-quota", "1000", "upd")
	assert.Check(t, is.Contains(r.Stderr(), "Conflicting options: Nano CPUs and CPU Quota cannot both be set"))
	d.DockerOK(t, "run", "-d", "--rm", "--name", "rm", "busybox", "sleep", "300")
	r = d.Docker("update", "--restart", "always", "rm")
	assert.Check(t, is.Contains(r.Stderr(), "Restart policy cannot be updated because AutoRemove is enabled for the container"))
}
