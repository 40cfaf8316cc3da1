package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// Reliability (issue 20): races that killed berthd, waits that never
// answered, stops that hung, restarts that failed. Checked against dockerd
// 20.10 (the anchor engine) where it says so.

// assertAlive fails when berthd has died or logged a panic.
func assertAlive(t *testing.T, d *testenv.Daemon) {
	t.Helper()
	assert.Assert(t, syscall.Kill(d.Pid(), 0) == nil, "berthd died:\n%s", d.Log())
	d.DockerOK(t, "version")
	assert.Check(t, !strings.Contains(d.Log(), "panic"), "berthd logged a panic:\n%s", d.Log())
}

// rm -f of a running --rm container kills it; the exit's auto-remove and
// the rm -f raced to remove it twice ("close of closed channel": the
// client saw EOF, or the exit watcher's panic killed berthd). Then the
// reverse: the container exits (and auto-removes) while rm -f runs, at
// offsets spread over the exit; and two rm -f at once.
func TestReliabilityRemoveRaces(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	var ids []string
	for i := range 12 {
		name := fmt.Sprintf("r%d", i)
		id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--rm", "--name", name, "busybox", "sleep", "30"))
		ids = append(ids, id)
		r := d.Docker("rm", "-f", name)
		assert.Assert(t, r.ExitCode == 0, "rm -f %s, run %d: %s %s", name, i, r.Stderr(), d.Log())
	}
	assertAlive(t, d)

	for i := range 12 {
		name := fmt.Sprintf("x%d", i)
		id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--rm", "--name", name, "busybox", "sh", "-c", "sleep 0.3"))
		ids = append(ids, id)
		time.Sleep(time.Duration(200+i*20) * time.Millisecond) // around the exit
		r := d.Docker("rm", "-f", name)
		if r.ExitCode != 0 {
			// the auto-remove won: dockerd's answers
			assert.Check(t, strings.Contains(r.Stderr(), "No such container") || strings.Contains(r.Stderr(), "is already in progress"), "%s", r.Stderr())
		}
	}
	assertAlive(t, d)

	for i := range 6 {
		name := fmt.Sprintf("t%d", i)
		id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", name, "busybox", "sleep", "30"))
		ids = append(ids, id)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j] = d.Docker("rm", "-f", name).ExitCode
			}()
		}
		wg.Wait()
		assert.Check(t, codes[0] == 0 || codes[1] == 0, "neither rm -f of %s succeeded", name)
	}
	assertAlive(t, d)

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if out := d.DockerOK(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
			return poll.Continue("containers left: %s", out)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	for _, id := range ids {
		assert.Check(t, is.Len(d.Leftovers(t, id), 0), "container %s", id[:12])
	}
	// each container was destroyed once
	evs := d.DockerOK(t, "events", "--since", "0", "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=destroy", "--format", "{{.Actor.ID}}")
	assert.Equal(t, len(strings.Fields(evs)), len(ids), "destroy events:\n%s", evs)
}

// dockerd answers POST /wait (condition not-running, the default) of a
// container that keeps restarting at its next exit; next-exit likewise;
// removed at its removal.
func TestReliabilityWaitRestartAlways(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 3")
	for i := range 3 {
		r := icmd.RunCmd(d.Cmd("wait", "loop"), icmd.WithTimeout(30*time.Second))
		assert.Assert(t, !r.Timeout, "docker wait %d on a restarting container did not return", i)
		assert.Equal(t, strings.TrimSpace(r.Stdout()), "3", "wait %d: %s", i, r.Stderr())
	}
	for _, cond := range []string{"next-exit", "not-running", ""} {
		code, body := apiPost(t, d, "/containers/loop/wait?condition="+cond, 30*time.Second)
		assert.Equal(t, code, http.StatusOK, "condition %q", cond)
		assert.Check(t, is.Contains(body, `"StatusCode":3`), "condition %q", cond)
	}
	// removed answers once the container is gone, not at an exit
	done := make(chan string, 1)
	go func() {
		_, body := apiPost(t, d, "/containers/loop/wait?condition=removed", 60*time.Second)
		done <- body
	}()
	time.Sleep(time.Second) // a few exits and restarts go by
	select {
	case body := <-done:
		t.Fatalf("wait removed answered before the removal: %s", body)
	default:
	}
	d.DockerOK(t, "rm", "-f", "loop")
	select {
	case body := <-done:
		assert.Check(t, is.Contains(body, `"StatusCode"`))
	case <-time.After(30 * time.Second):
		t.Fatal("wait removed did not answer after the removal")
	}
}

// apiPost posts to the daemon's API and returns the status and body.
func apiPost(t *testing.T, d *testenv.Daemon, path string, timeout time.Duration) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{
		Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", d.Sock) },
	}}
	resp, err := c.Post("http://berth/v1.47"+path, "application/json", nil)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// docker stop of a paused container sent the signal to frozen processes
// and hung forever; dockerd sends it, thaws the container (an unpause
// event) and goes on as for a running one. docker kill and rm -f too.
func TestReliabilityStopPaused(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	// handles TERM, so a stop that thaws it ends at once with 0; says when
	// its trap is set (a pause before that, on a loaded machine, left a
	// shell that ignores TERM as pid 1: the stop's timeout, then 137)
	d.DockerOK(t, "run", "-d", "--name", "pz", "busybox", "sh", "-c", `trap "exit 0" TERM; echo trapped; while :; do sleep 0.1; done`)
	trapped := func(runs int) {
		t.Helper()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if n := strings.Count(d.DockerOK(t, "logs", "pz"), "trapped"); n < runs {
				return poll.Continue("%d runs have set their trap, want %d", n, runs)
			}
			return poll.Success()
		}, poll.WithTimeout(time.Minute))
	}
	for i := range 2 { // the second time too
		trapped(i + 1)
		d.DockerOK(t, "pause", "pz")
		assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "pz"), "paused")
		r := icmd.RunCmd(d.Cmd("stop", "pz"), icmd.WithTimeout(30*time.Second))
		assert.Assert(t, !r.Timeout, "docker stop of a paused container hung (run %d)", i)
		r.Assert(t, icmd.Success)
		assert.Equal(t, inspectF(t, d, "{{.State.Status}} {{.State.ExitCode}}", "pz"), "exited 0")
		d.DockerOK(t, "start", "pz")
	}
	evs := d.DockerOK(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=pz", "--format", "{{.Action}}")
	count := map[string]int{}
	for _, a := range strings.Fields(evs) {
		count[a]++
	}
	assert.Check(t, count["pause"] == 2 && count["unpause"] == 2 && count["stop"] == 2 && count["die"] == 2, "events: %s", evs)

	d.DockerOK(t, "pause", "pz")
	r := icmd.RunCmd(d.Cmd("kill", "pz"), icmd.WithTimeout(30*time.Second))
	r.Assert(t, icmd.Success)
	waitInspect(t, d, "{{.State.Status}} {{.State.ExitCode}}", "pz", "exited 137", 20*time.Second)

	d.DockerOK(t, "start", "pz")
	d.DockerOK(t, "pause", "pz")
	r = icmd.RunCmd(d.Cmd("rm", "-f", "pz"), icmd.WithTimeout(30*time.Second))
	r.Assert(t, icmd.Success)
	assertAlive(t, d)
}

// docker restart of an auto-remove container stopped it, the exit removed
// it, and the start failed ("open .../shim.json: no such file"); dockerd
// restarts it. A restart whose client hangs up still completes, with its
// events.
func TestReliabilityRestart(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--rm", "--name", "rr", "busybox", "sleep", "300")
	for i := range 3 {
		pid := inspectF(t, d, "{{.State.Pid}}", "rr")
		r := d.Docker("restart", "-t", "1", "rr")
		assert.Assert(t, r.ExitCode == 0, "restart %d: %s", i, r.Stderr())
		assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "rr"), "running")
		assert.Check(t, inspectF(t, d, "{{.State.Pid}}", "rr") != pid)
	}
	// it is still an auto-remove container: its next exit removes it
	d.DockerOK(t, "stop", "-t", "1", "rr")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if r := d.Docker("inspect", "rr"); r.ExitCode == 0 {
			return poll.Continue("rr still there")
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second))

	// the stop takes 2 s (TERM is ignored); the client gives up after 0.3 s
	d.DockerOK(t, "run", "-d", "--name", "slow", "busybox", "sh", "-c", `trap "" TERM; while :; do sleep 0.1; done`)
	started := inspectF(t, d, "{{.State.StartedAt}}", "slow")
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	code, _ := apiPostCut(t, d, "/containers/slow/restart?t=2", 300*time.Millisecond)
	assert.Equal(t, code, 0, "the client was to hang up before the answer")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		st := inspectF(t, d, "{{.State.Status}} {{.State.StartedAt}}", "slow")
		if st == "running "+started || !strings.HasPrefix(st, "running ") {
			return poll.Continue("not restarted yet: %s", st)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		evs := d.DockerOK(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "container=slow", "--format", "{{.Action}}")
		if !strings.Contains(evs, "restart") {
			return poll.Continue("no restart event: %s", evs)
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second))
}

// apiPostCut posts and hangs up after timeout; code is 0 when it did.
func apiPostCut(t *testing.T, d *testenv.Daemon, path string, timeout time.Duration) (int, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{
		Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", d.Sock) },
	}}
	resp, err := c.Post("http://berth/v1.47"+path, "application/json", nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Smaller differences (issues 12, 21), each as dockerd 20.10 answers.
func TestReliabilityDockerDifferences(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	// docker ps quotes arguments that contain a space
	d.DockerOK(t, "run", "-d", "--name", "tq", "-w", "/tmp/", "--pids-limit", "50", "busybox", "sh", "-c", `trap "exit 0" TERM; sleep 100 & wait`)
	out := d.DockerOK(t, "ps", "--no-trunc", "--filter", "name=tq", "--format", "{{.Command}}")
	assert.Equal(t, strings.TrimSpace(out), `"sh -c 'trap \"exit 0\" TERM; sleep 100 & wait'"`)

	// WorkingDir is stored clean
	assert.Equal(t, inspectF(t, d, "{{.Config.WorkingDir}}", "tq"), "/tmp")

	// update --pids-limit: a new limit, then -1 lifts it (stored as 0)
	id := inspectF(t, d, "{{.Id}}", "tq")
	pidsMax := func() string {
		t.Helper()
		b, err := os.ReadFile("/sys/fs/cgroup/pids/" + strings.Trim(d.CgroupParent(), "/") + "/" + id + "/pids.max")
		assert.NilError(t, err)
		return strings.TrimSpace(string(b))
	}
	assert.Equal(t, pidsMax(), "50")
	d.DockerOK(t, "update", "--pids-limit", "30", "tq")
	assert.Equal(t, pidsMax(), "30")
	assert.Equal(t, inspectF(t, d, "{{.HostConfig.PidsLimit}}", "tq"), "30")
	d.DockerOK(t, "update", "--pids-limit", "-1", "tq")
	assert.Equal(t, pidsMax(), "max")
	assert.Equal(t, inspectF(t, d, "{{.HostConfig.PidsLimit}}", "tq"), "0")
	d.DockerOK(t, "update", "--pids-limit", "20", "tq")
	assert.Equal(t, pidsMax(), "20")
	d.DockerOK(t, "create", "--name", "nolimit", "--pids-limit", "-1", "busybox")
	assert.Equal(t, inspectF(t, d, "{{.HostConfig.PidsLimit}}", "nolimit"), "<nil>")

	// a create body that says it is not JSON is a 400, and makes nothing
	for range 2 {
		r := icmd.RunCommand("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", d.Sock, "-H", "Content-Type: text/plain",
			"-d", `{"Image":"busybox"}`, "http://berth/v1.47/containers/create?name=plain")
		assert.Check(t, is.Contains(r.Stdout(), "unsupported Content-Type header (text/plain): must be 'application/json'"))
		assert.Check(t, strings.HasSuffix(strings.TrimSpace(r.Stdout()), "400"), r.Stdout())
	}
	assert.Check(t, d.Docker("inspect", "plain").ExitCode != 0)
}
