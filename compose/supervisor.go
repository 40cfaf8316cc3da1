package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// The supervisor keeps deployments true, by these rules:
//
//   - A berth-deployed project (Origin berth) has the replicas its record
//     says: one that disappears (removed behind berth's back, its record
//     broken, lost with the host) is recreated from the record's model and
//     its service's pin, with no registry needed while the pinned image is
//     in the store. A replica is only recreated once its project has been
//     quiet for Grace, and not when the project's networks are gone too:
//     that is a client's `docker compose down`, and the deployment ends
//     with it. Stopped replicas stay stopped (docker stop is the user's);
//     restarts are the restart policy's (the runtime's, with Docker's
//     backoff).
//   - A client that creates replicas of a berth-deployed project (docker
//     compose up, up --scale), or stops and then removes one (docker
//     compose down, rm, up --remove-orphans, or docker stop and rm), takes
//     it over: it becomes Origin compose. A replica removed while it ran
//     (docker rm -f) or lost is berth's to recreate.
//   - A project of the compose CLI (Origin compose) is recorded as its
//     containers are: replicas, config hashes, pins. berth never resurrects
//     what the API removed; the record goes when the last replica does.
//   - A replica that keeps exiting (restarted crashLoopRestarts times) is
//     reported in the record (Problem) and as a crashloop event.
//   - After a reboot, a berth-deployed replica with no restart policy that
//     the host took down (the runtime found its monitor gone) is started:
//     the restart policies cover the others.

// crashLoopRestarts is how many restarts make a crash loop.
const crashLoopRestarts = 3

// quiet is how long a crash-looping replica must run to be well again (the
// runtime's backoff reset).
const quiet = 10 * time.Second

// Run supervises deployments and runs scheduled jobs until ctx ends. Start
// it once the runtime has restored its containers and applied their
// restart policies.
func (m *Manager) Run(ctx context.Context) {
	_, ch, cancel := m.d.Events.Subscribe(time.Time{})
	defer cancel()
	scheduler := make(chan struct{})
	go func() { defer close(scheduler); m.runScheduler(ctx) }()
	defer func() { <-scheduler }()
	m.recoverExecutions(ctx)
	m.sweep(ctx, true)
	due := map[string]time.Time{}
	sweep := time.NewTicker(m.d.Sweep)
	defer sweep.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			for project, delay := range m.interest(msg) {
				at := time.Now().Add(delay)
				if t, ok := due[project]; !ok || delay == m.d.Grace || at.Before(t) {
					due[project] = at // a change restarts the grace
				}
			}
		case p := <-m.dirty:
			due[p] = time.Now().Add(100 * time.Millisecond)
		case <-timer.C:
		case <-sweep.C:
			m.sweep(ctx, false)
		}
		now := time.Now()
		next := time.Hour
		for _, p := range slices.Sorted(maps.Keys(due)) {
			if wait := due[p].Sub(now); wait > 0 {
				next = min(next, wait)
				continue
			}
			delete(due, p)
			if !m.check(ctx, p, false) {
				due[p] = now.Add(250 * time.Millisecond) // busy: look again soon
				next = min(next, 250*time.Millisecond)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// interest says which projects an event concerns and when to look at them.
func (m *Manager) interest(msg events.Message) map[string]time.Duration {
	attrs := msg.Actor.Attributes
	switch msg.Type {
	case events.ContainerEventType:
		k, ok := KeyOf(attrs)
		if !ok {
			return nil
		}
		if k.OneOff {
			m.jobEvent(msg, k)
			return nil
		}
		switch msg.Action {
		case events.ActionCreate:
			if !m.isOurs(attrs["name"]) {
				m.handoverSoon(k.Project)
			}
			return map[string]time.Duration{k.Project: m.d.Grace}
		case events.ActionStop:
			if !m.isOurs(msg.Actor.ID) {
				m.setClientStopped(msg.Actor.ID, true)
			}
		case events.ActionDestroy:
			if m.setClientStopped(msg.Actor.ID, false) {
				m.handoverSoon(k.Project)
			}
			return map[string]time.Duration{k.Project: m.d.Grace}
		case events.ActionStart:
			m.setClientStopped(msg.Actor.ID, false)
			return map[string]time.Duration{k.Project: 200 * time.Millisecond}
		case events.ActionDie:
			return map[string]time.Duration{k.Project: 200 * time.Millisecond}
		}
	case events.NetworkEventType:
		if msg.Action != events.ActionDestroy {
			return nil
		}
		recs, _, err := m.d.Records.List()
		if err != nil {
			return nil
		}
		out := map[string]time.Duration{}
		for name, rec := range recs {
			if slices.Contains(rec.Networks, attrs["name"]) {
				out[name] = m.d.Grace
			}
		}
		return out
	}
	return nil
}

// setClientStopped sets or clears a replica's mark, reporting whether it
// was set.
func (m *Manager) setClientStopped(id string, stopped bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := m.clientStopped[id]
	if stopped {
		m.clientStopped[id] = true
	} else {
		delete(m.clientStopped, id)
	}
	return was
}

// handoverSoon makes a berth-deployed project the client's. The decision
// is taken now, from the event; the record is changed under the project's
// lock by whichever comes first: the handover started here (not waiting in
// the event loop for an operation that holds the project) or the
// supervisor's next check, which would otherwise keep the project as
// berth's and resurrect what the client removed (a check that won the lock
// did so on a loaded machine).
func (m *Manager) handoverSoon(project string) {
	m.mu.Lock()
	m.handovers[project] = true
	m.mu.Unlock()
	go func() {
		unlock := m.lock(project)
		defer unlock()
		m.handoverLocked(project)
	}()
}

// handoverLocked does a handover that is due; the caller holds the
// project's lock.
func (m *Manager) handoverLocked(project string) {
	m.mu.Lock()
	due := m.handovers[project]
	delete(m.handovers, project)
	m.mu.Unlock()
	if !due {
		return
	}
	rec, err := m.d.Records.Get(project)
	if err != nil || rec.Origin != OriginBerth {
		return
	}
	rec.Origin = OriginCompose
	rec.Updated = m.d.Clock.Now()
	if err := m.d.Records.Put(project, rec); err != nil {
		logrus.WithError(err).Warnf("deployment %s: record the handover", project)
		return
	}
	logrus.Infof("deployment %s: a client created or stopped and removed replicas of it; it is the client's now", project)
	m.event(project, ActionHandover, nil)
	m.wakeScheduler()
}

// sweep checks every deployment, recorded or not.
func (m *Manager) sweep(ctx context.Context, boot bool) {
	recs, _, err := m.d.Records.List()
	if err != nil {
		logrus.WithError(err).Warn("deployments: list records")
		return
	}
	view, err := m.dp.Ps(ctx, "")
	if err != nil {
		return
	}
	for _, p := range projectNames(recs, view) {
		m.check(ctx, p, boot)
	}
}

// check converges one project by the rules above. It reports false when
// an operation holds the project (look again later).
func (m *Manager) check(ctx context.Context, project string, boot bool) bool {
	unlock, ok := m.tryLock(project)
	if !ok {
		return false
	}
	defer unlock()
	m.handoverLocked(project)
	rec, err := m.d.Records.Get(project)
	if err != nil && !errdefs.IsNotFound(err) {
		logrus.WithError(err).Warnf("deployment %s: read the record", project)
		return true
	}
	observed, err := m.dp.containers(ctx, project, false)
	if err != nil {
		return true
	}
	if rec == nil || rec.Origin != OriginBerth {
		m.follow(ctx, project, rec, observed)
		return true
	}
	m.keep(ctx, rec, observed, boot)
	return true
}

// follow records a client's project as its containers are.
func (m *Manager) follow(ctx context.Context, project string, rec *DeploymentRecord, observed map[string][]container.Summary) {
	if len(observed) == 0 {
		if rec != nil {
			_ = m.d.Records.Delete(project)
			m.event(project, ActionDown, nil)
		}
		return
	}
	next := followRecord(rec, project, observed, m.d.Clock.Now())
	for name, sr := range next.Services {
		if sr.Pin != nil && sr.Pin.RepoDigest == "" && (rec == nil || rec.Services[name] == nil || rec.Services[name].Pin == nil || rec.Services[name].Pin.ImageID != sr.Pin.ImageID) {
			if img, err := m.inspectImage(ctx, sr.Pin.ImageID); err == nil && img != nil {
				sr.Pin.RepoDigest = repoDigest(img, sr.Image)
			}
		}
	}
	m.crashes(ctx, next, observed)
	if rec != nil && sameRecord(rec, next) {
		return
	}
	m.adoptModel(ctx, next)
	if err := m.d.Records.Put(project, next); err != nil {
		logrus.WithError(err).Warnf("deployment %s: record it", project)
	}
}

// adoptModel gives a client's project the model berth would deploy it
// from, when its compose files are on this host and load (without the
// client's environment) to exactly the config hashes its containers carry:
// then scale, up -p and jobs work for it too. Otherwise the record keeps no
// model, rather than a wrong one.
func (m *Manager) adoptModel(ctx context.Context, rec *DeploymentRecord) {
	if len(rec.ConfigFiles) == 0 {
		rec.Model, rec.Files, rec.FileHash = "", nil, ""
		return
	}
	src, err := sourceFromFiles(ctx, LoadOptions{ConfigFiles: rec.ConfigFiles, WorkingDir: rec.WorkingDir, ProjectName: rec.Project})
	if err != nil {
		rec.Model, rec.Files, rec.FileHash = "", nil, ""
		return
	}
	for name, sr := range rec.Services {
		s, ok := src.project.Services[name]
		if sr.Job != nil {
			continue
		}
		if !ok {
			rec.Model = ""
			return
		}
		if h, err := ServiceHash(s); err != nil || h != sr.ConfigHash {
			rec.Model = ""
			return
		}
	}
	rec.Model, rec.Files, rec.FileHash, rec.Networks, rec.Volumes = src.model, src.files, src.fileHash, projectNetworks(src.project), projectVolumes(src.project)
	for name, sr := range rec.Services {
		if s, ok := src.project.Services[name]; ok {
			sr.FileScale = s.GetScale()
		}
	}
}

// followRecord is the record of a client's project: what its containers
// say. The model, files and job history a berth deploy left stay.
func followRecord(rec *DeploymentRecord, project string, observed map[string][]container.Summary, now time.Time) *DeploymentRecord {
	next := &DeploymentRecord{Project: project, Origin: OriginCompose, Services: map[string]*ServiceRecord{}, Created: now, Updated: now}
	if rec != nil {
		next = rec.clone()
		next.Origin = OriginCompose
		next.Services = map[string]*ServiceRecord{}
	}
	for _, svc := range slices.Sorted(maps.Keys(observed)) {
		cs := observed[svc]
		c := cs[len(cs)-1] // the highest number: the latest config
		if next.WorkingDir == "" {
			next.WorkingDir = c.Labels[LabelWorkingDir]
			if cf := c.Labels[LabelConfigFiles]; cf != "" {
				next.ConfigFiles = strings.Split(cf, ",")
			}
		}
		sr := &ServiceRecord{Image: c.Image, ConfigHash: c.Labels[LabelConfigHash], Replicas: len(cs), FileScale: len(cs)}
		if prev := oldService(rec, svc); prev != nil {
			sr.FileScale, sr.Job, sr.LastTick, sr.Problem = prev.FileScale, prev.Job, prev.LastTick, prev.Problem
			if prev.Pin != nil && prev.Pin.ImageID == c.Labels[LabelImage] {
				sr.Pin = prev.Pin
			}
		}
		if id := c.Labels[LabelImage]; sr.Pin == nil && id != "" {
			sr.Pin = &Pin{ImageID: id, Pinned: now}
		}
		next.Services[svc] = sr
	}
	if rec != nil {
		for name, sr := range rec.Services {
			if sr.Job != nil && next.Services[name] == nil {
				next.Services[name] = sr // jobs have no replicas to see
			}
		}
	}
	return next
}

func sameRecord(a, b *DeploymentRecord) bool {
	if a.Origin != b.Origin || a.WorkingDir != b.WorkingDir || len(a.Services) != len(b.Services) {
		return false
	}
	for name, sa := range a.Services {
		sb := b.Services[name]
		if sb == nil || sa.Image != sb.Image || sa.ConfigHash != sb.ConfigHash || sa.Replicas != sb.Replicas ||
			(sa.Pin == nil) != (sb.Pin == nil) || sa.Pin != nil && *sa.Pin != *sb.Pin || (sa.Problem == nil) != (sb.Problem == nil) {
			return false
		}
	}
	return true
}

// keep converges a berth-deployed project to its record.
func (m *Manager) keep(ctx context.Context, rec *DeploymentRecord, observed map[string][]container.Summary, boot bool) {
	if len(observed) == 0 && len(rec.Networks) > 0 && !m.anyNetwork(ctx, rec.Networks) {
		logrus.Infof("deployment %s: its containers and networks were removed by a client; it is gone", rec.Project)
		_ = m.d.Records.Delete(rec.Project)
		m.forgetExecutions(rec.Project)
		m.event(rec.Project, ActionDown, nil)
		m.wakeScheduler()
		return
	}
	changed := m.crashes(ctx, rec, observed)
	var plan *Plan
	for _, svc := range slices.Sorted(maps.Keys(rec.Services)) {
		sr := rec.Services[svc]
		if sr.Job != nil {
			continue
		}
		var have []int
		for _, c := range observed[svc] {
			if c.State == container.StateDead {
				_ = m.d.Containers.Remove(ctx, c.ID, runtime.RemoveOptions{Force: true})
				continue
			}
			if boot {
				m.startLost(ctx, rec.Project, c)
			}
			if k, ok := KeyOf(c.Labels); ok {
				have = append(have, k.Number)
			}
		}
		missing, _ := scaleDiff(have, sr.Replicas)
		if len(missing) == 0 {
			if sr.Problem != nil && sr.Problem.Kind == ProblemRestore {
				sr.Problem, changed = nil, true
			}
			continue
		}
		if plan == nil {
			var err error
			if plan, _, err = m.recordPlan(ctx, rec, nil); err != nil {
				changed = m.problem(rec, svc, &Problem{Kind: ProblemRestore, Message: err.Error()}) || changed
				break
			}
		}
		if err := m.restore(ctx, rec, plan, svc, missing); err != nil {
			changed = m.problem(rec, svc, &Problem{Kind: ProblemRestore, Message: err.Error()}) || changed
		} else if sr.Problem != nil && sr.Problem.Kind == ProblemRestore {
			sr.Problem, changed = nil, true
		}
	}
	if changed {
		if err := m.d.Records.Put(rec.Project, rec); err != nil {
			logrus.WithError(err).Warnf("deployment %s: record its problems", rec.Project)
		}
	}
}

// restore recreates a service's missing replicas from the plan, once its
// pinned image is in the store (pulled by digest when it is not and the
// registry answers).
func (m *Manager) restore(ctx context.Context, rec *DeploymentRecord, plan *Plan, svc string, missing []int) error {
	sr := rec.Services[svc]
	sp, ok := servicePlan(plan, svc)
	if !ok || sr.Pin == nil {
		return fmt.Errorf("service %s has no plan or pin", svc)
	}
	if _, err := m.pinChoice(ctx, sr.Image, sr.Pin); err != nil {
		if sr.Pin.RepoDigest == "" {
			return fmt.Errorf("pinned image %s of service %s is not in the store and has no registry digest to pull", pinName(sr.Pin), svc)
		}
		if perr := m.d.Puller.PullImage(ctx, sr.Pin.RepoDigest); perr != nil {
			return fmt.Errorf("pinned image %s of service %s is not in the store and could not be pulled: %v", sr.Pin.RepoDigest, svc, perr)
		}
		if plan, _, err = m.recordPlan(ctx, rec, nil); err != nil {
			return err
		}
		sp, _ = servicePlan(plan, svc)
	}
	for _, n := range missing {
		if n > len(sp.Containers) {
			continue
		}
		cp := sp.Containers[n-1]
		res := &UpResult{}
		id, err := m.dp.createAndStart(ctx, cp, "Restored", res)
		if err != nil {
			m.event(rec.Project, ActionRestore, map[string]string{"service": svc, "container": cp.Name, "error": err.Error()})
			return err
		}
		logrus.Infof("deployment %s: restored %s from its record (image %s)", rec.Project, cp.Name, cp.Request.Config.Image)
		m.event(rec.Project, ActionRestore, map[string]string{"service": svc, "container": cp.Name, "id": id, "image": cp.Request.Config.Image})
	}
	return nil
}

// startLost starts, once after the daemon starts, a replica without a
// restart policy that the host took down (its monitor was gone).
func (m *Manager) startLost(ctx context.Context, project string, c container.Summary) {
	if c.State != container.StateExited {
		return
	}
	ci, err := m.d.Containers.Inspect(ctx, c.ID, false)
	if err != nil || ci.State == nil || ci.State.Error == "" || ci.HostConfig == nil {
		return
	}
	if rp := ci.HostConfig.RestartPolicy.Name; rp != "" && rp != container.RestartPolicyDisabled {
		return // the runtime's AutoStart decided
	}
	if err := m.d.Containers.Start(ctx, c.ID); err != nil {
		logrus.WithError(err).Warnf("deployment %s: start %s lost with the host", project, containerSummaryName(c))
		return
	}
	m.event(project, ActionRestore, map[string]string{"container": containerSummaryName(c), "id": c.ID, "reason": ci.State.Error})
}

func (m *Manager) anyNetwork(ctx context.Context, names []string) bool {
	for _, n := range names {
		if _, err := m.d.Networks.InspectNetwork(ctx, n); err == nil || !errdefs.IsNotFound(err) {
			return true
		}
	}
	return false
}

// problem sets a service's problem, reporting whether it is news.
func (m *Manager) problem(rec *DeploymentRecord, svc string, p *Problem) bool {
	sr := rec.Services[svc]
	if sr.Problem != nil && sr.Problem.Kind == p.Kind && sr.Problem.Message == p.Message && sr.Problem.RestartCount == p.RestartCount {
		return false
	}
	p.Since = m.d.Clock.Now()
	if sr.Problem != nil && sr.Problem.Kind == p.Kind {
		p.Since = sr.Problem.Since
	}
	news := sr.Problem == nil || sr.Problem.Kind != p.Kind
	sr.Problem = p
	if news {
		logrus.Warnf("deployment %s: service %s: %s", rec.Project, svc, p.Message)
		action := ActionRestore
		if p.Kind == ProblemCrashLoop {
			action = ActionCrashLoop
		}
		m.event(rec.Project, action, map[string]string{"service": svc, "container": p.Container, "error": p.Message, "exitCode": itoa(p.ExitCode)})
	}
	return true
}

// crashes reports replicas that keep exiting and clears the report of a
// service whose replicas have run well for a while.
func (m *Manager) crashes(ctx context.Context, rec *DeploymentRecord, observed map[string][]container.Summary) bool {
	changed := false
	for svc, cs := range observed {
		sr := rec.Services[svc]
		if sr == nil {
			continue
		}
		var crash *Problem
		well := true
		for _, c := range cs {
			if c.State != container.StateRestarting && (sr.Problem == nil || sr.Problem.Kind != ProblemCrashLoop) {
				continue
			}
			ci, err := m.d.Containers.Inspect(ctx, c.ID, false)
			if err != nil || ci.State == nil {
				continue
			}
			started, _ := time.Parse(time.RFC3339Nano, ci.State.StartedAt)
			if ci.State.Status != container.StateRunning || time.Since(started) < quiet {
				well = false
			}
			if crash == nil && ci.RestartCount >= crashLoopRestarts && ci.State.Status == container.StateRestarting {
				crash = &Problem{Kind: ProblemCrashLoop, Container: containerSummaryName(c), ExitCode: ci.State.ExitCode, RestartCount: ci.RestartCount,
					Message: fmt.Sprintf("%s keeps exiting (exit %d, restarted %d times); its restart policy (%s) retries with a growing delay", containerSummaryName(c), ci.State.ExitCode, ci.RestartCount, ci.HostConfig.RestartPolicy.Name)}
				crash.Logs = m.dp.lastLines(ctx, c.ID, diagnoseLines)
			}
		}
		switch {
		case crash != nil:
			changed = m.problem(rec, svc, crash) || changed
		case well && sr.Problem != nil && sr.Problem.Kind == ProblemCrashLoop:
			sr.Problem, changed = nil, true
		}
	}
	return changed
}
