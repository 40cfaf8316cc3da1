package integration

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

func executions(t *testing.T, d *testenv.Daemon, project, svc string) []compose.JobExecution {
	t.Helper()
	var list []compose.JobExecution
	apiGet(t, d, "/berth/compose/"+project+"/jobs?service="+svc, &list)
	return list
}

// Jobs (x-berth: {job: true}) run on demand and report their exit code and
// logs; a scheduled job (here every 5 seconds) runs on its ticks, and a
// berthd killed between two runs neither skips nor repeats one; a running
// execution can be cancelled; a schedule that does not parse is refused.
func TestDeployJobsAndSchedule(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	yaml := mustRead(t, composeFile("fleet")) +
		"  long:\n    image: busybox:latest\n    command: [sleep, \"3600\"]\n    x-berth: {job: true}\n"
	file := writeProject(t, yaml)
	berthOK(t, d, "compose", "up", "-f", file)
	assert.Check(t, !strings.Contains(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"), "migrate"), "a job is not deployed by up")

	id := strings.TrimSpace(berthOK(t, d, "compose", "run-job", "-p", "fleet", "migrate"))
	assert.Check(t, is.Len(id, 12))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		list := executions(t, d, "fleet", "migrate")
		if len(list) != 1 || list[0].State != compose.ExecFailed {
			return poll.Continue("%+v", list)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	out := berthOK(t, d, "compose", "jobs", "-p", "fleet", "--logs", "migrate")
	assert.Check(t, is.Contains(out, id))
	assert.Check(t, is.Contains(out, "failed"))
	assert.Check(t, is.Contains(out, "schema v2 missing a column"))
	e := executions(t, d, "fleet", "migrate")[0]
	assert.Check(t, is.Equal(e.ExitCode, 3))
	// (stdout and stderr are two pipes: their order is the reader's, as on Docker)
	slices.Sort(e.Logs)
	assert.Check(t, is.DeepEqual(e.Logs, []string{"migrating", "schema v2 missing a column"}))

	long := strings.TrimSpace(berthOK(t, d, "compose", "run-job", "-p", "fleet", "long"))
	assert.Check(t, is.Contains(berthOK(t, d, "compose", "cancel", "-p", "fleet", long), long+" cancelled"))
	r := d.Berth(t, "compose", "cancel", "-p", "fleet", long)
	assert.Check(t, is.Contains(r.Stderr(), "is not running (cancelled)"))
	r = d.Berth(t, "compose", "run-job", "-p", "fleet", "web")
	assert.Check(t, is.Contains(r.Stderr(), `service "web" is not a job`))

	// scheduled: a run, berthd killed, then two more
	waitRuns := func(n int) []compose.JobExecution {
		var list []compose.JobExecution
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			list = executions(t, d, "fleet", "report")
			done := 0
			for _, e := range list {
				if e.State == compose.ExecSucceeded {
					done++
				}
			}
			if done < n {
				return poll.Continue("%d runs done", done)
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second), poll.WithDelay(200*time.Millisecond))
		return list
	}
	waitRuns(1)
	killed := time.Now()
	d.Restart(t, syscall.SIGKILL)
	up := time.Now()
	list := waitRuns(3)
	var ticks []time.Time
	for _, e := range list {
		assert.Check(t, is.Equal(e.Trigger, compose.TriggerSchedule))
		if e.State != compose.ExecSucceeded {
			continue // the last may still run
		}
		assert.Check(t, is.Equal(e.ExitCode, 0))
		assert.Check(t, len(e.Logs) == 1 && strings.HasPrefix(e.Logs[0], "report at "), "%v", e.Logs)
		ticks = append(ticks, e.Tick)
	}
	slices.SortFunc(ticks, func(a, b time.Time) int { return a.Compare(b) })
	// never twice for one tick, always on the schedule; ticks missed while
	// berthd was down are collapsed into the next one (compose.dueTick: on
	// a loaded machine the restart may take longer than a tick), and none
	// is skipped while it runs
	for i := 1; i < len(ticks); i++ {
		gap := ticks[i].Sub(ticks[i-1])
		assert.Check(t, gap > 0 && gap%(5*time.Second) == 0, "ticks %v: one run twice or off the schedule", ticks)
		for m := ticks[i-1].Add(5 * time.Second); m.Before(ticks[i]); m = m.Add(5 * time.Second) {
			// a tick whose run the kill cut just after it came counts as missed while down
			assert.Check(t, m.After(killed.Add(-time.Second)) && m.Before(up), "ticks %v: %v skipped while berthd ran (down from %v to %v)", ticks, m, killed, up)
		}
	}

	// a schedule that does not parse: refused, the record unchanged
	before := deployment(t, d, "fleet")
	badFile := writeProject(t, strings.Replace(yaml, `"*/5 * * * * *"`, `"every five seconds"`, 1))
	r = d.Berth(t, "compose", "up", "-f", badFile)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), `service "report": x-berth.schedule`), r.Stderr())
	assert.Check(t, is.Equal(deployment(t, d, "fleet").FileHash, before.FileHash))
	berthOK(t, d, "compose", "down", "-p", "fleet")
	assert.Check(t, is.Equal(leftovers(t, d, "fleet"), ""))
}
