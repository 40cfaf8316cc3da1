package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/creack/pty"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// apiGet decodes a GET of berthd's API.
func apiGet(t *testing.T, d *testenv.Daemon, path string, out any) {
	t.Helper()
	resp, err := unixClient(d.Sock).Get("http://berthd" + path)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Assert(t, resp.StatusCode == http.StatusOK, "GET %s: %s %s", path, resp.Status, b)
	assert.NilError(t, json.Unmarshal(b, out), string(b))
}

var logLine = regexp.MustCompile(`^(worker-[123]) +\| (\S+) (\S+) tick (\d+)$`)

// The third "done when" and its neighbours: merged logs of three
// replicas, interleaved by time with compose's prefixes, -f ending on
// down; exec into a chosen replica (its exit code, a TTY when berth has
// one); a replica that dies at start fails up with its exit code and last
// lines, and the record says so.
func TestDeployLogsExecAndFailedStart(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	file := writeProject(t, `name: logs
services:
  worker:
    image: busybox:latest
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); echo \"$$(hostname) tick $$i\"; sleep 0.2; done"]
    stop_signal: SIGKILL
    deploy:
      replicas: 3
`)
	berthOK(t, d, "compose", "up", "-f", file)
	// merged, by time, with compose's padded prefixes
	var lines []string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		lines = strings.Split(strings.TrimSpace(berthOK(t, d, "compose", "logs", "-p", "logs", "-t", "worker")), "\n")
		seen := map[string]int{}
		for _, l := range lines {
			if m := logLine.FindStringSubmatch(l); m != nil {
				seen[m[1]]++
			}
		}
		if seen["worker-1"] < 3 || seen["worker-2"] < 3 || seen["worker-3"] < 3 {
			return poll.Continue("%v", seen)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	var stamps []string
	for _, l := range lines {
		m := logLine.FindStringSubmatch(l)
		assert.Assert(t, m != nil, "line %q", l)
		assert.Check(t, strings.HasPrefix(l, m[1]+"  | "), "compose pads the prefix: %q", l)
		stamps = append(stamps, m[2])
	}
	assert.Check(t, slices.IsSortedFunc(stamps, func(a, b string) int {
		ta, _ := time.Parse(time.RFC3339Nano, a)
		tb, _ := time.Parse(time.RFC3339Nano, b)
		return ta.Compare(tb)
	}), "not in time order:\n%s", strings.Join(lines, "\n"))
	tail := strings.Split(strings.TrimSpace(berthOK(t, d, "compose", "logs", "-p", "logs", "--tail", "1")), "\n")
	assert.Check(t, is.Len(tail, 3), "%v", tail)

	// exec: the replica asked for, its exit code, a TTY when attached to one
	host := strings.TrimSpace(berthOK(t, d, "compose", "exec", "-p", "logs", "--index", "2", "worker", "hostname"))
	assert.Check(t, is.Equal(host, inspectF(t, d, "{{.Config.Hostname}}", "logs-worker-2")))
	r := d.Berth(t, "compose", "exec", "-p", "logs", "worker", "sh", "-c", "echo out; echo err >&2; exit 7")
	assert.Check(t, is.Equal(r.ExitCode, 7))
	assert.Check(t, is.Equal(r.Stdout(), "out\n"))
	assert.Check(t, is.Equal(r.Stderr(), "err\n"))
	r = d.Berth(t, "compose", "exec", "-p", "logs", "--index", "9", "worker", "true")
	assert.Check(t, is.Contains(r.Stderr(), `service "worker" is not running container #9`))
	cmd := exec.Command(testenv.BerthCLI(t), "-H", "unix://"+d.Sock, "compose", "exec", "-p", "logs", "worker", "tty")
	f, err := pty.Start(cmd)
	assert.NilError(t, err)
	var ttyOut bytes.Buffer
	_, _ = io.Copy(&ttyOut, f)
	assert.NilError(t, cmd.Wait())
	f.Close()
	assert.Check(t, is.Contains(ttyOut.String(), "/dev/pts/"))

	// logs -f follows all three and ends when the deployment goes down
	follow := icmd.StartCmd(icmd.Cmd{Command: []string{testenv.BerthCLI(t), "-H", "unix://" + d.Sock, "compose", "logs", "-f", "-p", "logs", "--tail", "0"}, Env: d.Env()})
	assert.NilError(t, follow.Error)
	var mu sync.Mutex
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		mu.Lock()
		defer mu.Unlock()
		out := follow.Stdout()
		for _, p := range []string{"worker-1  | ", "worker-2  | ", "worker-3  | "} {
			if !strings.Contains(out, p) {
				return poll.Continue("no %q yet", p)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	berthOK(t, d, "compose", "down", "-p", "logs")
	res := icmd.WaitOnCmd(20*time.Second, follow)
	assert.Check(t, is.Equal(res.ExitCode, 0), res.Combined())

	// a replica that exits at start fails the deploy, with why
	bad := writeProject(t, `name: broken
services:
  api:
    image: busybox:latest
    command: ["sh", "-c", "echo loading config; echo 'fatal: no DATABASE_URL' >&2; exit 3"]
`)
	r = d.Berth(t, "compose", "up", "-f", bad)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "container broken-api-1 exited (3) right after it started"), r.Stderr())
	assert.Check(t, is.Contains(r.Stderr(), "fatal: no DATABASE_URL"))
	ld := deployment(t, d, "broken").LastDeploy
	assert.Assert(t, ld != nil)
	assert.Check(t, is.Equal(ld.Result, "failed"))
	assert.Assert(t, is.Len(ld.Failures, 1))
	assert.Check(t, is.Equal(ld.Failures[0].ExitCode, 3))
	assert.Check(t, is.Contains(strings.Join(ld.Failures[0].Logs, "\n"), "loading config"))
	berthOK(t, d, "compose", "down", "-p", "broken")

	// one that keeps crashing follows its restart policy (Docker's backoff)
	// and is reported: in the record and as a crashloop event
	since := time.Now().Format(time.RFC3339Nano)
	crashy := writeProject(t, "name: crashy\nservices:\n  loop:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo cannot bind :80; exit 2\"]\n    restart: always\n")
	r = d.Berth(t, "compose", "up", "-f", crashy)
	assert.Check(t, is.Contains(r.Stderr(), "container crashy-loop-1 exited (2) right after it started"), r.Combined())
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		p := service(deployment(t, d, "crashy"), "loop").Problem
		if p == nil || p.Kind != "crashloop" {
			return poll.Continue("no crash loop reported: %+v", p)
		}
		if p.RestartCount < 3 || p.ExitCode != 2 || !strings.Contains(strings.Join(p.Logs, "\n"), "cannot bind :80") {
			return poll.Continue("%+v", p)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	evs := d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=deployment", "--filter", "label=com.docker.compose.project=crashy", "--format", "{{.Action}} {{.Actor.Attributes.container}}")
	assert.Check(t, is.Contains(evs, "crashloop crashy-loop-1"))
	assert.Check(t, is.Equal(inspectF(t, d, "{{.HostConfig.RestartPolicy.Name}}", "crashy-loop-1"), "always"))
	berthOK(t, d, "compose", "down", "-p", "crashy")
}
