package compose

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

const jobsYAML = `name: ops
services:
  web:
    image: busybox:latest
    command: [sleep, infinity]
  migrate:
    image: busybox:latest
    command: ["false"]
    x-berth: {job: true}
  report:
    image: busybox:latest
    command: ["true"]
    x-berth: {schedule: "*/1 * * * *", history: 3}
  slow:
    image: busybox:latest
    command: [sleep, infinity]
    x-berth: {schedule: "*/1 * * * *"}
`

func ticksOf(list []*JobExecution, service string) []string {
	var out []string
	for _, e := range list {
		if e.Service == service {
			out = append(out, e.Tick.Format("15:04:05")+" "+e.State)
		}
	}
	return out
}

func TestJobsRunOnDemand(t *testing.T) {
	h := newHarness(t)
	h.write(t, jobsYAML)
	h.up(t)
	assert.Check(t, is.DeepEqual(h.names("ops"), []string{"ops-web-1"}), "jobs have no replicas")
	ctx := context.Background()
	e, err := h.m.RunJob(ctx, "ops", "migrate")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.State, ExecFailed))
	assert.Check(t, is.Equal(e.ExitCode, 1))
	assert.Check(t, is.Equal(e.Container, "ops-migrate-run-"+e.ID))
	c := h.e.lookup(e.Container)
	assert.Assert(t, c != nil)
	assert.Check(t, is.Equal(c.Config.Labels[LabelOneoff], "True"))
	assert.Check(t, is.Equal(c.Config.Labels[LabelJobExecution], e.ID))
	assert.Check(t, is.Equal(string(c.HostConfig.RestartPolicy.Name), "no"))

	list, err := h.m.Jobs(ctx, "ops", "migrate")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(list, 1))
	assert.Check(t, is.Equal(list[0].ID, e.ID))

	_, err = h.m.RunJob(ctx, "ops", "web")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = h.m.RunJob(ctx, "ops", "nope")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = h.m.RunJob(ctx, "nope", "migrate")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = h.m.CancelJob(ctx, "ops", "0123456789ab")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = h.m.CancelJob(ctx, "ops", e.ID)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	_, err = h.m.Jobs(ctx, "ops", "nope")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	// a long one is cancelled
	h.write(t, jobsYAML+"  long:\n    image: busybox:latest\n    command: [sleep, infinity]\n    x-berth: {job: true}\n")
	h.up(t)
	e, err = h.m.RunJob(ctx, "ops", "long")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.State, ExecRunning))
	e, err = h.m.CancelJob(ctx, "ops", e.ID)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.State, ExecCancelled))
}

// A schedule runs each tick once: across a daemon restart between ticks,
// after a crash between recording a tick and starting it, and with a
// missed tick collapsed; a tick that finds the last run still running is
// skipped (overlap: skip). History is kept to its size.
func TestScheduleRunsEachTickOnce(t *testing.T) {
	h := newHarness(t)
	h.write(t, jobsYAML)
	h.up(t) // at 10:00:00
	ctx := context.Background()
	report := func(m *Manager) []string {
		list, err := m.Jobs(ctx, "ops", "report")
		assert.NilError(t, err)
		return ticksOf(list, "report")
	}
	h.clock.Advance(30 * time.Second)
	h.m.scheduleDue(ctx)
	assert.Check(t, is.Len(report(h.m), 0))

	h.clock.Advance(30 * time.Second) // 10:01:00
	h.m.scheduleDue(ctx)
	assert.Check(t, is.DeepEqual(report(h.m), []string{"10:01:00 succeeded"}))
	h.m.scheduleDue(ctx)
	assert.Check(t, is.DeepEqual(report(h.m), []string{"10:01:00 succeeded"}), "a tick runs once")

	// the daemon restarts between ticks
	m2 := h.manager(t)
	m2.recoverExecutions(ctx)
	h.clock.Advance(30 * time.Second)
	m2.scheduleDue(ctx)
	assert.Check(t, is.Len(report(m2), 1))
	h.clock.Advance(40 * time.Second) // 10:02:10
	m2.scheduleDue(ctx)
	assert.Check(t, is.DeepEqual(report(m2), []string{"10:01:00 succeeded", "10:02:00 succeeded"}))

	// a daemon that died after recording the 10:03 run, before starting it
	h.clock.Advance(50 * time.Second) // 10:03:00
	tick := h.clock.Now()
	assert.NilError(t, m2.d.Executions.Put(tickID("ops", "report", tick), &JobExecution{ID: tickID("ops", "report", tick), Project: "ops", Service: "report", Trigger: TriggerSchedule, Tick: tick, State: ExecPending, Created: tick}))
	m3 := h.manager(t)
	m3.recoverExecutions(ctx)
	m3.scheduleDue(ctx)
	assert.Check(t, is.DeepEqual(report(m3), []string{"10:01:00 succeeded", "10:02:00 succeeded", "10:03:00 succeeded"}))

	// down across two ticks: one run, for the latest
	h.clock.Advance(2*time.Minute + 5*time.Second) // 10:05:05
	m3.scheduleDue(ctx)
	assert.Check(t, is.DeepEqual(report(m3), []string{"10:02:00 succeeded", "10:03:00 succeeded", "10:05:00 succeeded"}), "history: 3")

	// slow still runs from 10:01: its ticks since were skipped
	slow, err := m3.Jobs(ctx, "ops", "slow")
	assert.NilError(t, err)
	got := ticksOf(slow, "slow")
	assert.Check(t, is.DeepEqual(got, []string{"10:01:00 running", "10:02:00 skipped", "10:03:00 skipped", "10:05:00 skipped"}))
}

// The scheduler wakes on the clock by itself.
func TestSchedulerLoop(t *testing.T) {
	h := newHarness(t)
	h.write(t, jobsYAML)
	h.up(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.m.runScheduler(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		h.clock.Advance(time.Second)
		list, _ := h.m.Jobs(context.Background(), "ops", "report")
		if len(list) == 1 && list[0].State == ExecSucceeded {
			return poll.Success()
		}
		return poll.Continue("%d executions", len(list))
	}, poll.WithDelay(time.Millisecond), poll.WithTimeout(30*time.Second))
}
