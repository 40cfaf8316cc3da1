package compose

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// The scheduler runs berth-deployed jobs with a schedule. Each service
// record holds LastTick, the tick that ran last; the next run is the
// schedule's latest tick in (LastTick, now] (dueTick), so a daemon that was
// down across ticks runs the job once when it is back, and one that
// restarts between ticks neither skips nor repeats one. A tick's execution
// has an ID derived from the tick (tickID) and is recorded before it
// starts: a tick is never run twice, even across a crash at any point.

// runScheduler runs due ticks until ctx ends, waking at the next tick or
// when a record changes.
func (m *Manager) runScheduler(ctx context.Context) {
	for {
		wait := m.scheduleDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.schedule:
		case <-m.d.Clock.After(wait):
		}
	}
}

// scheduleDue starts every due tick and returns how long until the next.
func (m *Manager) scheduleDue(ctx context.Context) time.Duration {
	recs, _, err := m.d.Records.List()
	if err != nil {
		logrus.WithError(err).Warn("scheduler: list deployments")
		return time.Minute
	}
	wait := time.Hour
	now := m.d.Clock.Now()
	for _, project := range slices.Sorted(maps.Keys(recs)) {
		rec := recs[project]
		if rec.Origin != OriginBerth {
			continue
		}
		for _, svc := range slices.Sorted(maps.Keys(rec.Services)) {
			sr := rec.Services[svc]
			if sr.Job == nil || sr.Job.Schedule == "" {
				continue
			}
			sched, err := ParseSchedule(sr.Job.Schedule)
			if err != nil {
				continue // refused at deploy; an old record
			}
			last := sr.LastTick
			if tick, due := dueTick(sched, last, now); due {
				m.runTick(ctx, project, svc, tick)
				last = tick
			}
			if next := sched.Next(last); !next.IsZero() {
				wait = min(wait, next.Sub(now))
			}
		}
	}
	return max(wait, 10*time.Millisecond)
}

// runTick runs one scheduled tick of a job, unless it ran already.
func (m *Manager) runTick(ctx context.Context, project, svc string, tick time.Time) {
	unlock := m.lock(project)
	defer unlock()
	rec, err := m.d.Records.Get(project)
	if err != nil || rec.Origin != OriginBerth {
		return
	}
	sr := rec.Services[svc]
	if sr == nil || sr.Job == nil || !sr.LastTick.Before(tick) {
		return
	}
	id := tickID(project, svc, tick)
	_, ranAlready := m.d.Executions.Get(id)
	if ranAlready != nil {
		e := &JobExecution{ID: id, Project: project, Service: svc, Trigger: TriggerSchedule, Tick: tick, State: ExecPending, Created: m.d.Clock.Now()}
		if sr.Job.Overlap != OverlapAllow && m.running(project, svc) {
			e.State, e.Error, e.Finished = ExecSkipped, "the previous execution is still running (overlap: skip)", e.Created
		}
		if err := m.putExecution(e); err != nil {
			logrus.WithError(err).Warnf("job %s/%s: record the run of %s", project, svc, tick)
			return
		}
		defer func() {
			if e.State == ExecSkipped {
				m.event(project, ActionJob, map[string]string{"service": svc, "execution": id, "state": ExecSkipped})
				m.pruneExecutions(ctx, project, svc)
				return
			}
			if err := m.startExecution(ctx, rec, e); err != nil {
				logrus.WithError(err).Warnf("job %s/%s: run of %s", project, svc, tick)
			}
		}()
	}
	sr.LastTick = tick
	if err := m.d.Records.Put(project, rec); err != nil {
		logrus.WithError(err).Warnf("job %s/%s: record the tick %s", project, svc, tick)
	}
}

// running reports whether a job has an execution that has not ended.
func (m *Manager) running(project, svc string) bool {
	for _, e := range m.executions(project, svc) {
		if !e.done() {
			return true
		}
	}
	return false
}
