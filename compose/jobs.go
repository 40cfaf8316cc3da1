package compose

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// Jobs are services marked x-berth: {job: true} (or with a schedule). An
// execution is one run to completion, in a one-off container of the
// service (compose's `run` kind: <project>-<service>-run-<id>, labelled
// oneoff), created from the record's model and the service's pin. Each
// execution has a record (table compose-executions) that outlives its
// container: state, exit code, last log lines. The last History of a job
// are kept, with their containers.

// LabelJobExecution marks a job execution's container with its ID.
const LabelJobExecution = "berth.job.execution"

// Execution states.
const (
	ExecPending   = "pending" // recorded, not started yet
	ExecRunning   = "running"
	ExecSucceeded = "succeeded"
	ExecFailed    = "failed"
	ExecCancelled = "cancelled"
	ExecSkipped   = "skipped" // a scheduled tick while the last run was still running (overlap: skip)
	ExecLost      = "lost"    // its container went before it ended
)

// Execution triggers.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
)

// jobLogLines is how many of an execution's last log lines are kept.
const jobLogLines = 20

// JobExecution is one run of a job.
type JobExecution struct {
	ID          string
	Project     string
	Service     string
	Trigger     string
	Tick        time.Time `json:",omitzero"` // the schedule tick it ran for
	State       string
	Container   string `json:",omitempty"`
	ContainerID string `json:",omitempty"`
	Created     time.Time
	Started     time.Time `json:",omitzero"`
	Finished    time.Time `json:",omitzero"`
	ExitCode    int
	Error       string   `json:",omitempty"`
	Logs        []string `json:",omitempty"`
	// Cancel is set by a cancel, so that the exit it causes reads as one.
	Cancel bool `json:",omitempty"`
}

func (e *JobExecution) done() bool {
	switch e.State {
	case ExecPending, ExecRunning:
		return false
	}
	return true
}

// ExecutionStore keeps job executions; *store.Table[JobExecution] is one.
type ExecutionStore interface {
	// Get returns ErrNotFound for an unknown execution.
	Get(id string) (*JobExecution, error)
	Put(id string, e *JobExecution) error
	Delete(id string) error
	List() (map[string]*JobExecution, []store.Corrupt, error)
}

var _ ExecutionStore = (*store.Table[JobExecution])(nil)

// RunJob starts one execution of a job and returns it (running).
func (m *Manager) RunJob(ctx context.Context, project, service string) (*JobExecution, error) {
	unlock := m.lock(project)
	defer unlock()
	rec, err := m.record(project)
	if err != nil {
		return nil, err
	}
	sr := rec.Services[service]
	if sr == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no such service: " + service)
	}
	if sr.Job == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %q is not a job (mark it x-berth: {job: true})", service))
	}
	e := &JobExecution{ID: randomID(), Project: project, Service: service, Trigger: TriggerManual, State: ExecPending, Created: m.d.Clock.Now()}
	if err := m.startExecution(ctx, rec, e); err != nil {
		return e, err
	}
	return e, nil
}

// startExecution records e as pending, then creates and starts its
// container. A daemon that dies in between finds it pending and starts it
// (recoverExecutions): recorded first, so never run twice.
func (m *Manager) startExecution(ctx context.Context, rec *DeploymentRecord, e *JobExecution) error {
	if err := m.putExecution(e); err != nil {
		return err
	}
	fail := func(err error) error {
		e.State, e.Error, e.Finished = ExecFailed, err.Error(), m.d.Clock.Now()
		_ = m.putExecution(e)
		m.event(e.Project, ActionJob, map[string]string{"service": e.Service, "execution": e.ID, "state": e.State, "error": e.Error})
		return err
	}
	plan, _, err := m.recordPlan(ctx, rec, map[string]int{e.Service: 1})
	if err != nil {
		return fail(err)
	}
	sp, ok := servicePlan(plan, e.Service)
	if !ok || len(sp.Containers) == 0 {
		return fail(fmt.Errorf("service %s has no plan", e.Service))
	}
	if _, err := m.pinChoice(ctx, sp.Image, rec.Services[e.Service].Pin); err != nil {
		return fail(fmt.Errorf("job %s: %w", e.Service, err))
	}
	cp := jobContainer(plan.Project, sp.Containers[0], e.ID)
	e.Container = cp.Name
	resp, err := m.dp.d.Containers.Create(ctx, runtime.CreateRequest{Name: cp.Name, Config: cp.Request.Config, HostConfig: cp.Request.HostConfig, NetworkingConfig: cp.Request.NetworkingConfig})
	if err != nil {
		return fail(err)
	}
	e.ContainerID = resp.ID
	if err := m.putExecution(e); err != nil {
		return fail(err)
	}
	if err := m.d.Containers.Start(ctx, resp.ID); err != nil {
		return fail(err)
	}
	e.State, e.Started = ExecRunning, m.d.Clock.Now()
	if err := m.putExecution(e); err != nil {
		return err
	}
	m.event(e.Project, ActionJob, map[string]string{"service": e.Service, "execution": e.ID, "state": ExecRunning, "trigger": e.Trigger})
	// its die event may have come before it was recorded running
	m.finishExecution(ctx, e.ID)
	if cur, err := m.d.Executions.Get(e.ID); err == nil {
		*e = *cur
	}
	return nil
}

func (m *Manager) putExecution(e *JobExecution) error {
	m.execMu.Lock()
	defer m.execMu.Unlock()
	return m.d.Executions.Put(e.ID, e)
}

// jobContainer makes a replica's plan an execution's: a one-off container
// with no restart policy and no service aliases.
func jobContainer(project string, cp ContainerPlan, id string) ContainerPlan {
	req := cp.Request
	cfg := *req.Config
	cfg.Labels = maps.Clone(cfg.Labels)
	delete(cfg.Labels, LabelContainerNumber)
	cfg.Labels[LabelOneoff] = "True"
	cfg.Labels[LabelSlug] = id
	cfg.Labels[LabelJobExecution] = id
	hc := *req.HostConfig
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	req.Config, req.HostConfig = &cfg, &hc
	if req.NetworkingConfig != nil {
		nc := *req.NetworkingConfig
		nc.EndpointsConfig = maps.Clone(nc.EndpointsConfig)
		for k, ep := range nc.EndpointsConfig {
			if ep != nil {
				e := *ep
				e.Aliases = nil
				nc.EndpointsConfig[k] = &e
			}
		}
		req.NetworkingConfig = &nc
	}
	name := project + "-" + cfg.Labels[LabelService] + "-run-" + id
	return ContainerPlan{Name: name, Request: req}
}

// jobEvent ends an execution when its container dies.
func (m *Manager) jobEvent(msg events.Message, _ ContainerKey) {
	id := msg.Actor.Attributes[LabelJobExecution]
	if id == "" || msg.Action != events.ActionDie && msg.Action != events.ActionDestroy {
		return
	}
	go m.finishExecution(context.Background(), id)
}

// finishExecution records how an execution ended (idempotent).
func (m *Manager) finishExecution(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m.execMu.Lock()
	e, err := m.d.Executions.Get(id)
	if err != nil || e.done() || e.ContainerID == "" {
		m.execMu.Unlock()
		return
	}
	c, err := m.d.Containers.Inspect(ctx, e.ContainerID, false)
	switch {
	case errdefs.IsNotFound(err):
		e.State, e.Error = ExecLost, "its container was removed before it ended"
	case err != nil:
		m.execMu.Unlock()
		return
	case c.State == nil || c.State.Status == container.StateRunning || c.State.Status == container.StateCreated || c.State.Status == container.StateRestarting:
		m.execMu.Unlock()
		return
	default:
		e.ExitCode, e.Error = c.State.ExitCode, c.State.Error
		e.State = ExecSucceeded
		if e.ExitCode != 0 {
			e.State = ExecFailed
		}
		if e.Cancel {
			e.State = ExecCancelled
		}
		e.Logs = m.dp.lastLines(ctx, e.ContainerID, jobLogLines)
	}
	e.Finished = m.d.Clock.Now()
	_ = m.d.Executions.Put(e.ID, e)
	m.execMu.Unlock()
	m.event(e.Project, ActionJob, map[string]string{"service": e.Service, "execution": e.ID, "state": e.State, "exitCode": itoa(e.ExitCode)})
	m.pruneExecutions(ctx, e.Project, e.Service)
}

// pruneExecutions keeps a job's last History executions (and containers).
func (m *Manager) pruneExecutions(ctx context.Context, project, service string) {
	keep := defaultJobHistory
	if rec, err := m.d.Records.Get(project); err == nil && rec.Services[service] != nil && rec.Services[service].Job != nil {
		keep = rec.Services[service].Job.History
	}
	list := m.executions(project, service)
	var done []*JobExecution
	for _, e := range list {
		if e.done() {
			done = append(done, e)
		}
	}
	for len(done) > keep {
		e := done[0]
		done = done[1:]
		if e.ContainerID != "" {
			_ = m.d.Containers.Remove(ctx, e.ContainerID, runtime.RemoveOptions{Force: true})
		}
		_ = m.d.Executions.Delete(e.ID)
	}
}

// executions are a project's (and service's, when given) executions,
// oldest first.
func (m *Manager) executions(project, service string) []*JobExecution {
	all, _, err := m.d.Executions.List()
	if err != nil {
		return nil
	}
	var out []*JobExecution
	for _, e := range all {
		if e.Project == project && (service == "" || e.Service == service) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *JobExecution) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Jobs lists a project's executions, oldest first; ErrNotFound for an
// unknown project or service.
func (m *Manager) Jobs(ctx context.Context, project, service string) ([]*JobExecution, error) {
	rec, err := m.record(project)
	if err != nil {
		return nil, err
	}
	if service != "" && rec.Services[service] == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no such service: " + service)
	}
	out := m.executions(project, service)
	if out == nil {
		out = []*JobExecution{}
	}
	return out, nil
}

// CancelJob stops a running execution (its stop signal, then its grace
// period) and records it cancelled.
func (m *Manager) CancelJob(ctx context.Context, project, id string) (*JobExecution, error) {
	m.execMu.Lock()
	e, err := m.d.Executions.Get(id)
	if err != nil || e.Project != project {
		m.execMu.Unlock()
		return nil, errdefs.ErrNotFound.WithMessage("No such job execution: " + id)
	}
	if e.done() {
		m.execMu.Unlock()
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("job execution %s is not running (%s)", id, e.State))
	}
	e.Cancel = true
	_ = m.d.Executions.Put(e.ID, e)
	m.execMu.Unlock()
	if e.ContainerID != "" {
		if err := m.d.Containers.Stop(ctx, e.ContainerID, "", nil); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsNotModified(err) {
			return nil, err
		}
	}
	if e.State == ExecPending && e.ContainerID == "" {
		m.execMu.Lock()
		e.State, e.Finished = ExecCancelled, m.d.Clock.Now()
		_ = m.d.Executions.Put(e.ID, e)
		m.execMu.Unlock()
	}
	m.finishExecution(ctx, id)
	return m.d.Executions.Get(id)
}

// recoverExecutions settles, at daemon start, the executions the last
// daemon left unfinished: ended ones are recorded, pending ones (recorded,
// never started) start now.
func (m *Manager) recoverExecutions(ctx context.Context) {
	all, _, err := m.d.Executions.List()
	if err != nil {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		e := all[id]
		switch {
		case e.done():
		case e.ContainerID != "":
			m.finishExecution(ctx, id)
		default:
			// no container yet: one may exist if the daemon died after
			// creating it
			list, err := m.d.Containers.List(ctx, runtime.ListOptions{All: true, Filters: filters.New([2]string{"label", LabelJobExecution + "=" + id})})
			if err == nil && len(list) > 0 {
				e.ContainerID, e.Container, e.State = list[0].ID, containerSummaryName(list[0]), ExecRunning
				if list[0].State == container.StateCreated {
					_ = m.d.Containers.Start(ctx, list[0].ID)
				}
				_ = m.putExecution(e)
				m.finishExecution(ctx, id)
				continue
			}
			unlock := m.lock(e.Project)
			if rec, err := m.d.Records.Get(e.Project); err == nil {
				if err := m.startExecution(ctx, rec, e); err != nil {
					logrus.WithError(err).Warnf("job %s/%s: start execution %s", e.Project, e.Service, e.ID)
				}
			} else {
				e.State, e.Error = ExecLost, "its deployment is gone"
				_ = m.putExecution(e)
			}
			unlock()
		}
	}
}

// forgetExecutions drops a project's job history (its containers went
// with the project).
func (m *Manager) forgetExecutions(project string) {
	for _, e := range m.executions(project, "") {
		_ = m.d.Executions.Delete(e.ID)
	}
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tickID is a scheduled execution's ID: the same tick is the same
// execution, whatever happens to the daemon.
func tickID(project, service string, tick time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", project, service, tick.UnixNano()))
	return hex.EncodeToString(sum[:6])
}
