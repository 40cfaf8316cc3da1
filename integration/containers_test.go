package integration

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

func TestRunRmLeavesNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerOK(t, "run", "--rm", "--cidfile", d.Root+"/cid", "busybox", "echo", "hi")
	assert.Equal(t, out, "hi\n")
	cid := readFile(t, d.Root+"/cid")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), "")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if left := d.Leftovers(t, cid); len(left) > 0 {
			return poll.Continue("left: %v", left)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	r := d.Docker("run", "busybox", "sh", "-c", "exit 3")
	assert.Equal(t, r.ExitCode, 3)
	r = d.Docker("run", "--name", "missing-cmd", "busybox", "nosuchcmd")
	assert.Equal(t, r.ExitCode, 127, r.Combined())
	assert.Check(t, is.Contains(r.Stderr(), "executable file not found"))
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "missing-cmd"))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.ExitCode}}", "missing-cmd")), "127")
	assert.Check(t, is.Len(d.Leftovers(t, id), 0))
}

func TestDetachedLifecycle(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "sleeper", "busybox", "sh", "-c", "echo started; sleep 60")
	ps := d.DockerOK(t, "ps", "--format", "{{.Names}} {{.Status}}")
	assert.Check(t, is.Contains(ps, "sleeper Up"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(d.DockerOK(t, "logs", "sleeper"), "started") {
			return poll.Success()
		}
		return poll.Continue("no log yet")
	}, poll.WithTimeout(30*time.Second))
	start := time.Now()
	d.DockerOK(t, "stop", "-t", "1", "sleeper")
	// the 1 s grace, not the default 10 s, whatever the machine's load
	assert.Check(t, time.Since(start) < 9*time.Second, "stop -t 1 took %v", time.Since(start))
	exited := d.DockerOK(t, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}")
	assert.Check(t, is.Contains(exited, "sleeper Exited (137)"))
	assert.Check(t, !strings.Contains(d.DockerOK(t, "ps", "--format", "{{.Names}}"), "sleeper"))
	d.DockerOK(t, "rm", "sleeper")
	r := d.Docker("inspect", "sleeper")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "No such"))
}

func TestRunConfig(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerOK(t, "run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "33", "busybox", "sh", "-c", "echo $A; pwd; id -u")
	assert.Equal(t, out, "1\n/tmp\n33\n")
	out = d.DockerOK(t, "run", "--rm", "--memory", "64m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	assert.Equal(t, strings.TrimSpace(out), strconv.Itoa(64<<20))
	out = d.DockerOK(t, "run", "--rm", "--hostname", "berthy", "busybox", "hostname")
	assert.Equal(t, out, "berthy\n")
	out = d.DockerOK(t, "run", "--rm", "-u", "www-data", "busybox", "id", "-un")
	assert.Equal(t, out, "www-data\n")
	out = d.DockerOK(t, "run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm")
	assert.Check(t, is.Contains(out, "1 docker-init"))
	out = d.DockerOK(t, "run", "--rm", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c", "df -k /run | tail -1")
	assert.Check(t, is.Contains(out, "tmpfs"), out)
	assert.Check(t, is.Contains(out, " 1024 "), out)
	r := d.Docker("run", "--rm", "--read-only", "busybox", "touch", "/x")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "Read-only file system"))
}

func TestLogsOptions(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "talker", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; done")
	r := icmd.RunCmd(d.Cmd("logs", "--tail", "3", "--timestamps", "talker"))
	assert.Equal(t, r.ExitCode, 0)
	lines := strings.Split(strings.TrimSpace(r.Stdout()+r.Stderr()), "\n")
	assert.Equal(t, len(lines), 3, "%q", lines)
	for _, l := range lines {
		ts, _, _ := strings.Cut(l, " ")
		_, err := time.Parse(time.RFC3339Nano, ts)
		assert.Check(t, err, "no timestamp in %q", l)
	}
	r = icmd.RunCmd(d.Cmd("logs", "talker"))
	assert.Equal(t, r.Stdout(), "out 1\nout 2\nout 3\nout 4\nout 5\n")
	assert.Equal(t, r.Stderr(), "err 1\nerr 2\nerr 3\nerr 4\nerr 5\n")
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	assert.Equal(t, d.DockerOK(t, "logs", "--since", future, "talker"), "")

	// -f returns when the container exits
	d.DockerOK(t, "run", "-d", "--name", "follow-me", "busybox", "sh", "-c", "echo one; sleep 1; echo two")
	start := time.Now()
	r = icmd.RunCmd(d.Cmd("logs", "-f", "follow-me"))
	assert.Equal(t, r.ExitCode, 0)
	assert.Equal(t, r.Stdout(), "one\ntwo\n")
	assert.Check(t, time.Since(start) < 10*time.Second)
}

func TestErrorsInDockersWords(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	r := d.Docker("start", "nosuchthing")
	assert.Check(t, is.Contains(r.Stderr(), "No such container: nosuchthing"))
	d.DockerOK(t, "run", "-d", "--name", "busy", "busybox", "sleep", "60")
	r = d.Docker("rm", "busy")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "container is running"))
	r = d.Docker("run", "--restart", "sometimes", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "invalid restart policy"))
	r = d.Docker("kill", "-s", "NOSUCHSIG", "busy")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "invalid signal"))
	r = d.Docker("ps", "--filter", "status=sleepy")
	assert.Check(t, is.Contains(r.Stderr(), "invalid filter"))
	r = d.Docker("create", "--name", "busy", "busybox")
	assert.Check(t, is.Contains(r.Stderr(), "is already in use"))
	// the start of a running container is a 304: the CLI says nothing and exits 0
	d.DockerOK(t, "start", "busy")
}

func TestPsFiltersAndRename(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "alpha", "--label", "tier=web", "busybox", "sleep", "60")
	d.DockerOK(t, "create", "--name", "beta", "--label", "tier=db", "busybox", "true")
	assert.Equal(t, d.Docker("run", "--name", "gamma", "busybox", "sh", "-c", "exit 2").ExitCode, 2)
	names := func(args ...string) string {
		return strings.TrimSpace(d.DockerOK(t, append([]string{"ps", "--format", "{{.Names}}"}, args...)...))
	}
	assert.Equal(t, names(), "alpha")
	assert.Equal(t, names("-a", "--filter", "label=tier=db"), "beta")
	assert.Equal(t, names("-a", "--filter", "label=tier"), "beta\nalpha")
	assert.Equal(t, names("-a", "--filter", "exited=2"), "gamma")
	assert.Equal(t, names("-a", "--filter", "status=created"), "beta")
	assert.Equal(t, names("-a", "--filter", "name=alp"), "alpha")
	assert.Equal(t, names("-a", "--filter", "ancestor=busybox"), "gamma\nbeta\nalpha")
	assert.Equal(t, names("-a", "--filter", "since=alpha"), "gamma\nbeta")
	assert.Equal(t, names("-a", "--filter", "before=gamma"), "beta\nalpha")
	d.DockerOK(t, "rename", "alpha", "omega")
	assert.Equal(t, names(), "omega")
	d.DockerOK(t, "pause", "omega")
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--format", "{{.Status}}"), "(Paused)"))
	d.DockerOK(t, "unpause", "omega")
	out := d.DockerOK(t, "container", "prune", "-f")
	assert.Check(t, is.Contains(out, "Total reclaimed space"))
	assert.Equal(t, names("-a"), "omega")
}

func TestContainerSurvivesDaemonKill(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "survivor", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done")
	pid := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Pid}}", "survivor"))
	logged := func() int { return strings.Count(d.DockerOK(t, "logs", "survivor"), "tick ") }
	atLeast := func(n int) func(poll.LogT) poll.Result {
		return func(poll.LogT) poll.Result {
			if got := logged(); got < n {
				return poll.Continue("%d ticks logged, waiting for %d", got, n)
			}
			return poll.Success()
		}
	}
	// it has logged for a while before the daemon dies...
	poll.WaitOn(t, atLeast(3), poll.WithTimeout(time.Minute), poll.WithDelay(50*time.Millisecond))
	before := logged()
	d.Restart(t, syscall.SIGKILL)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "survivor")), "running "+pid)
	// ...and its log goes on after the restart, with no gap
	poll.WaitOn(t, atLeast(before+3), poll.WithTimeout(time.Minute), poll.WithDelay(50*time.Millisecond))
	logs := d.DockerOK(t, "logs", "survivor")
	ticks := strings.Split(strings.TrimSpace(logs), "\n")
	assert.Check(t, len(ticks) > 5)
	for i, l := range ticks {
		assert.Equal(t, l, "tick "+strconv.Itoa(i+1), "log has a gap")
	}
	d.DockerOK(t, "exec", "survivor", "true")
	d.DockerOK(t, "stop", "-t", "1", "survivor")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "survivor")), "exited")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	return strings.TrimSpace(string(b))
}
