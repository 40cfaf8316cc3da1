package compose

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// EventBus is the daemon's event bus (*events.Bus): the manager follows
// container events and publishes deployment events.
type EventBus interface {
	EventSource
	Publish(m events.Message)
}

// ManagerDeps are what a Manager needs.
type ManagerDeps struct {
	Containers ContainerService
	Networks   NetworkService
	Volumes    VolumeService
	Images     ImageService
	Logs       LogService
	Puller     ImagePuller
	Records    RecordStore
	Executions ExecutionStore
	Events     EventBus
	// Clock is the scheduler's and the supervisor's time; nil is RealClock.
	Clock Clock
	// FailWindow is how long after its start a replica that exits fails
	// the deploy that started it; 0 means 1s, negative never.
	FailWindow time.Duration
	// Grace is how long the supervisor leaves a berth-deployed project
	// alone after a replica of it went, so that a client tearing the
	// project down (docker compose down) finishes first; 0 means 2s.
	Grace time.Duration
	// Sweep is how often the supervisor looks at every deployment besides
	// reacting to events; 0 means 15s.
	Sweep time.Duration
	// Poll is how often waits look; 0 means 250ms.
	Poll time.Duration
}

// Manager is berth's service manager: deployments as durable objects. It
// keeps a record per project (desired replicas, pins, the model), converges
// the engine to it (up, scale), keeps berth-deployed projects true (the
// supervisor), runs jobs and schedules, and shows it all.
type Manager struct {
	d  ManagerDeps
	dp *Deployer

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// ours are the container names berth is creating, and the IDs it is
	// stopping, so that a client's creates and stops can be told apart
	ours map[string]time.Time
	// clientStopped are replicas a client stopped (since their last start)
	clientStopped map[string]bool
	// handovers are projects a client has taken over whose record does not
	// say so yet (handoverSoon)
	handovers map[string]bool
	// execMu orders the read-modify-write of job execution records
	execMu sync.Mutex
	// dirty wakes the supervisor for a project (see supervisor.go)
	dirty chan string
	// schedule wakes the scheduler when records change
	schedule chan struct{}
}

// NewManager checks its dependencies.
func NewManager(d ManagerDeps) (*Manager, error) {
	if d.Containers == nil || d.Networks == nil || d.Volumes == nil || d.Images == nil || d.Logs == nil ||
		d.Puller == nil || d.Records == nil || d.Executions == nil || d.Events == nil {
		return nil, errors.New("compose: the manager needs containers, networks, volumes, images, logs, a puller, records, executions and events")
	}
	if d.Clock == nil {
		d.Clock = RealClock{}
	}
	if d.FailWindow == 0 {
		d.FailWindow = time.Second
	}
	if d.Grace <= 0 {
		d.Grace = 2 * time.Second
	}
	if d.Sweep <= 0 {
		d.Sweep = 15 * time.Second
	}
	m := &Manager{d: d, locks: map[string]*sync.Mutex{}, ours: map[string]time.Time{}, clientStopped: map[string]bool{}, handovers: map[string]bool{}, dirty: make(chan string, 256), schedule: make(chan struct{}, 1)}
	dp, err := NewDeployer(DeployerDeps{Containers: markingContainers{d.Containers, m.markOurs}, Networks: d.Networks, Volumes: d.Volumes, Images: d.Images, Logs: d.Logs, Poll: d.Poll})
	if err != nil {
		return nil, err
	}
	m.dp = dp
	return m, nil
}

// markingContainers notes every name berth creates a container under and
// every container it stops.
type markingContainers struct {
	ContainerService
	mark func(name string)
}

func (c markingContainers) Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error) {
	c.mark(req.Name)
	return c.ContainerService.Create(ctx, req)
}

func (c markingContainers) Stop(ctx context.Context, name, signal string, timeout *int) error {
	c.mark(name)
	return c.ContainerService.Stop(ctx, name, signal, timeout)
}

func (m *Manager) markOurs(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for n, t := range m.ours {
		if now.Sub(t) > time.Minute {
			delete(m.ours, n)
		}
	}
	m.ours[name] = now
}

func (m *Manager) isOurs(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ours[name]
	return ok
}

// lock serializes the operations on one project.
func (m *Manager) lock(project string) func() {
	l := m.projectLock(project)
	l.Lock()
	return l.Unlock
}

// tryLock is lock for the supervisor, which never waits for an operation.
func (m *Manager) tryLock(project string) (func(), bool) {
	l := m.projectLock(project)
	if !l.TryLock() {
		return nil, false
	}
	return l.Unlock, true
}

func (m *Manager) projectLock(project string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[project]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[project] = l
	}
	return l
}

// record is a project's record; ErrNotFound "No such deployment" when
// there is none.
func (m *Manager) record(project string) (*DeploymentRecord, error) {
	rec, err := m.d.Records.Get(project)
	if errdefs.IsNotFound(err) {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	return rec, err
}

// existing is the project's record, or nil. A record that does not decode
// is replaced by the deploy, with a warning.
func (m *Manager) existing(project string) *DeploymentRecord {
	rec, err := m.d.Records.Get(project)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			logrus.WithError(err).Warnf("deployment %s: the record is damaged; this deploy replaces it", project)
		}
		return nil
	}
	return rec
}

// Up deploys a project as `docker compose up -d` does (Deployer.Up), and
// makes it a deployment berth keeps: the record is written with the
// desired state before anything changes (a crash midway leaves the
// supervisor a target) and with the result after. Images follow each
// service's pull_policy; a service whose image moved is recreated one
// replica at a time; one whose image is gone and cannot be pulled is
// deployed from its pin. Bad input (the file, x-berth, pull_policy, images
// that cannot be found) is refused before the record or anything else
// changes.
func (m *Manager) Up(ctx context.Context, req UpRequest) (*UpResult, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	src, err := m.source(ctx, req)
	if err != nil {
		return nil, err
	}
	p := src.project
	jobs, err := jobSpecs(p)
	if err != nil {
		return nil, err
	}
	unlock := m.lock(p.Name)
	defer unlock()
	old := m.existing(p.Name)
	images, err := m.resolveImages(ctx, p, old, false)
	if err != nil {
		return nil, err
	}
	replicas := desiredReplicas(p, jobs, old)
	plan, err := NewPlanWith(p, PlanOptions{ServiceImages: choices(images), Replicas: replicas})
	if err != nil {
		return nil, err
	}
	observed, err := m.dp.containers(ctx, p.Name, false)
	if err != nil {
		return nil, err
	}
	now := m.d.Clock.Now()
	rec := newRecord(src, plan, jobs, replicas, images, old, now)
	rec.LastDeploy = &DeployResult{Action: "up", Started: now, Result: ResultInProgress, Drift: driftOf(plan, observed, old, images)}
	for _, name := range slices.Sorted(maps.Keys(images)) {
		if images[name].Restored {
			rec.LastDeploy.Restored = append(rec.LastDeploy.Restored, name)
		}
	}
	if err := m.d.Records.Put(p.Name, rec); err != nil {
		return nil, err
	}
	res := &UpResult{Project: p.Name, Drift: rec.LastDeploy.Drift, Restored: rec.LastDeploy.Restored}
	err = m.dp.apply(ctx, plan, applyOptions{wait: req.Wait, removeOrphans: req.RemoveOrphans, rolling: true, failWindow: m.d.FailWindow}, res)
	if err != nil && len(res.Actions) == 0 {
		// refused before anything changed (an external network missing, a
		// network of another project): the record stays as it was
		m.restoreRecord(p.Name, old)
		return res, err
	}
	m.finish(rec, res, err)
	m.wakeScheduler()
	for _, dr := range res.Drift {
		m.event(p.Name, ActionDrift, map[string]string{"service": dr.Service, "image": dr.Image, "old": dr.OldImageID, "new": dr.NewImageID, "oldDigest": dr.OldDigest, "newDigest": dr.NewDigest})
	}
	for _, svc := range res.Restored {
		m.event(p.Name, ActionRestore, map[string]string{"service": svc, "image": digestOf(rec.Services[svc].Pin)})
	}
	m.event(p.Name, ActionDeploy, map[string]string{"result": rec.LastDeploy.Result})
	return res, err
}

// restoreRecord puts back the record an operation replaced (none: none).
func (m *Manager) restoreRecord(project string, old *DeploymentRecord) {
	var err error
	if old == nil {
		err = m.d.Records.Delete(project)
	} else {
		err = m.d.Records.Put(project, old)
	}
	if err != nil {
		logrus.WithError(err).Warnf("deployment %s: put the record back", project)
	}
}

// source is the project an up request deploys.
func (m *Manager) source(ctx context.Context, req UpRequest) (*source, error) {
	if !req.FromRecord {
		return sourceFromFiles(ctx, req.LoadOptions)
	}
	if req.ProjectName == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("project name is required to deploy from the record")
	}
	rec, err := m.record(req.ProjectName)
	if err != nil {
		return nil, err
	}
	return sourceFromRecord(ctx, rec)
}

// finish records how a deploy ended.
func (m *Manager) finish(rec *DeploymentRecord, res *UpResult, err error) {
	ld := rec.LastDeploy
	ld.Finished = m.d.Clock.Now()
	ld.Result = ResultSucceeded
	ld.Failures = res.Failures
	if err != nil {
		ld.Result, ld.Error = ResultFailed, err.Error()
	}
	rec.Updated = ld.Finished
	if perr := m.d.Records.Put(rec.Project, rec); perr != nil {
		logrus.WithError(perr).Warnf("deployment %s: record the result", rec.Project)
	}
}

func choices(images map[string]resolvedImage) map[string]ImageChoice {
	out := make(map[string]ImageChoice, len(images))
	for k, v := range images {
		out[k] = v.ImageChoice
	}
	return out
}

// newRecord is the record of a deploy of src.
func newRecord(src *source, plan *Plan, jobs map[string]*JobSpec, replicas map[string]int, images map[string]resolvedImage, old *DeploymentRecord, now time.Time) *DeploymentRecord {
	p := src.project
	rec := &DeploymentRecord{
		Project: p.Name, Origin: OriginBerth, WorkingDir: p.WorkingDir, ConfigFiles: slices.Clone(p.ComposeFiles),
		EnvFiles: src.envFiles, Files: src.files, FileHash: src.fileHash, Model: src.model,
		Services: map[string]*ServiceRecord{}, Networks: projectNetworks(p), Volumes: projectVolumes(p),
		Created: now, Updated: now,
	}
	if old != nil {
		rec.Created = old.Created
	}
	hashes := map[string]string{}
	for _, sp := range plan.Services {
		hashes[sp.Name] = sp.ConfigHash
	}
	for name, s := range p.Services {
		sr := &ServiceRecord{Image: imageRef(p.Name, s), ConfigHash: hashes[name], Replicas: replicas[name], FileScale: s.GetScale(), Pin: pinOf(images[name], now), Job: jobs[name]}
		if sr.Job != nil && sr.Job.Schedule != "" {
			sr.LastTick = now // the first run is the schedule's first tick from now
			if prev := oldService(old, name); prev != nil && prev.Job != nil && prev.Job.Schedule == sr.Job.Schedule && !prev.LastTick.IsZero() {
				sr.LastTick = prev.LastTick
			}
		}
		if prev := oldService(old, name); prev != nil && prev.Pin != nil && prev.Pin.ImageID == sr.Pin.ImageID {
			sr.Pin.Pinned = prev.Pin.Pinned
		}
		rec.Services[name] = sr
	}
	return rec
}

func oldService(old *DeploymentRecord, name string) *ServiceRecord {
	if old == nil {
		return nil
	}
	return old.Services[name]
}

// driftOf lists the services whose running replicas are of another image
// than the plan's: the ones up recreates because the image moved.
func driftOf(plan *Plan, observed map[string][]container.Summary, old *DeploymentRecord, images map[string]resolvedImage) []Drift {
	var out []Drift
	for _, sp := range plan.Services {
		for _, c := range observed[sp.Name] {
			was := c.Labels[LabelImage]
			if was == "" || was == sp.ImageID {
				continue
			}
			d := Drift{Service: sp.Name, Image: sp.Image, OldImageID: was, NewImageID: sp.ImageID, NewDigest: images[sp.Name].RepoDigest}
			if prev := oldService(old, sp.Name); prev != nil && prev.Pin != nil && prev.Pin.ImageID == was {
				d.OldDigest = prev.Pin.RepoDigest
			}
			out = append(out, d)
			break
		}
	}
	return out
}

// Down removes a project (Deployer.Down) and its record and job history.
func (m *Manager) Down(ctx context.Context, req DownRequest) (*UpResult, error) {
	if req.Project == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("project name is required")
	}
	unlock := m.lock(req.Project)
	defer unlock()
	res, err := m.dp.Down(ctx, req)
	if err != nil {
		return res, err
	}
	_, known := m.d.Records.Get(req.Project)
	if err := m.d.Records.Delete(req.Project); err != nil {
		return res, err
	}
	m.forgetExecutions(req.Project)
	m.wakeScheduler()
	if known == nil || len(res.Actions) > 0 {
		m.event(req.Project, ActionDown, nil)
	}
	return res, nil
}

// Ps is the deployment view of one project, or of all when project is "".
func (m *Manager) Ps(ctx context.Context, project string) ([]Deployment, error) {
	return m.dp.Ps(ctx, project)
}

// Deployments is every deployment: those with a record and those whose
// containers berth has not recorded yet.
func (m *Manager) Deployments(ctx context.Context) ([]DeploymentStatus, error) {
	recs, bad, err := m.d.Records.List()
	if err != nil {
		return nil, err
	}
	for _, c := range bad {
		logrus.WithError(c.Err).Warnf("deployment record %s does not decode", c.ID)
	}
	view, err := m.dp.Ps(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []DeploymentStatus{}
	for _, name := range projectNames(recs, view) {
		d, _ := Find(view, name)
		out = append(out, statusOf(recs[name], d))
	}
	return out, nil
}

// Deployment is one deployment; ErrNotFound for an unknown project.
func (m *Manager) Deployment(ctx context.Context, project string) (*DeploymentStatus, error) {
	rec, err := m.d.Records.Get(project)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	view, err := m.dp.Ps(ctx, project)
	if err != nil {
		return nil, err
	}
	d, seen := Find(view, project)
	if rec == nil && !seen {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	st := statusOf(rec, d)
	return &st, nil
}

func projectNames(recs map[string]*DeploymentRecord, view []Deployment) []string {
	names := map[string]bool{}
	for n := range recs {
		names[n] = true
	}
	for _, d := range view {
		names[d.Project] = true
	}
	return slices.Sorted(maps.Keys(names))
}

// the plan of a record, for the supervisor, scale and jobs: its model with
// the desired replicas and each service's pinned image (as far as it is
// in the store).
func (m *Manager) recordPlan(ctx context.Context, rec *DeploymentRecord, replicas map[string]int) (*Plan, *types.Project, error) {
	p, err := loadModel(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	images := map[string]ImageChoice{}
	for name, sr := range rec.Services {
		if sr.Pin == nil {
			continue
		}
		choice, err := m.pinChoice(ctx, sr.Image, sr.Pin)
		if err != nil {
			// planned all the same; creating from it fails with this
			choice = ImageChoice{ID: sr.Pin.ImageID, Ref: pinName(sr.Pin)}
		}
		images[name] = choice
	}
	for name, s := range p.Services {
		if _, ok := images[name]; !ok {
			// no pin (no replica was ever seen): the reference as it is here
			ref := imageRef(p.Name, s)
			choice := ImageChoice{Ref: ref}
			if img, err := m.inspectImage(ctx, ref); err == nil && img != nil {
				choice.ID = img.ID
			}
			images[name] = choice
		}
	}
	if replicas == nil {
		replicas = map[string]int{}
		for name, sr := range rec.Services {
			replicas[name] = sr.Replicas
		}
	}
	plan, err := NewPlanWith(p, PlanOptions{ServiceImages: images, Replicas: replicas})
	if err != nil {
		return nil, nil, err
	}
	return plan, p, nil
}

func (m *Manager) wakeScheduler() {
	select {
	case m.schedule <- struct{}{}:
	default:
	}
}

func servicePlan(plan *Plan, name string) (ServicePlan, bool) {
	for _, sp := range plan.Services {
		if sp.Name == name {
			return sp, true
		}
	}
	return ServicePlan{}, false
}

func itoa(n int) string { return strconv.Itoa(n) }
