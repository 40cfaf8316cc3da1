package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// ScaleRequest is the body of POST /berth/compose/{project}/scale.
type ScaleRequest struct {
	// Services maps service names to their new replica counts.
	Services map[string]int
	// Timeout bounds the request, in seconds; 0: no bound but the request's.
	Timeout int `json:",omitempty"`
}

// scaleDiff is what scaling a service with replicas numbered have to n
// replicas does, as compose does it: the missing numbers 1..n are created
// (lowest first), the numbers above n removed (highest first).
func scaleDiff(have []int, n int) (create, remove []int) {
	present := map[int]bool{}
	for _, h := range have {
		present[h] = true
	}
	for i := 1; i <= n; i++ {
		if !present[i] {
			create = append(create, i)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(present)) {
		if h > n || h < 1 {
			remove = append(remove, h)
		}
	}
	slices.Reverse(remove)
	return create, remove
}

// checkScale refuses a scale request the record cannot take, before
// anything changes.
func checkScale(rec *DeploymentRecord, req ScaleRequest) error {
	if len(req.Services) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("nothing to scale: give SERVICE=REPLICAS")
	}
	for _, name := range slices.Sorted(maps.Keys(req.Services)) {
		n := req.Services[name]
		if n < 0 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid number of replicas for service %q: %d (must be 0 or more)", name, n))
		}
		sr := rec.Services[name]
		if sr == nil {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such service: %s", name))
		}
		if sr.Job != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %q is a job: it has no replicas (berth compose run-job runs it)", name))
		}
	}
	return nil
}

// Scale sets services' desired replica counts and converges them: the
// missing replicas are created from the record's model and pins, the
// highest numbered extra ones stopped and removed. The new counts are
// recorded first, so that a daemon killed midway finishes the job when it
// is back (the supervisor), and they hold until the file's own scale
// changes. Nothing else of the deployment is touched.
func (m *Manager) Scale(ctx context.Context, project string, req ScaleRequest) (*UpResult, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	unlock := m.lock(project)
	defer unlock()
	rec, err := m.record(project)
	if err != nil {
		return nil, err
	}
	if err := checkScale(rec, req); err != nil {
		return nil, err
	}
	next := rec.clone()
	for name, n := range req.Services {
		next.Services[name].Replicas = n
	}
	replicas := map[string]int{}
	for name, sr := range next.Services {
		replicas[name] = sr.Replicas
	}
	plan, _, err := m.recordPlan(ctx, next, replicas)
	if err != nil {
		return nil, err
	}
	now := m.d.Clock.Now()
	next.Updated = now
	next.LastDeploy = &DeployResult{Action: "scale", Started: now, Result: ResultInProgress}
	if err := m.d.Records.Put(project, next); err != nil {
		return nil, err
	}
	res := &UpResult{Project: project}
	err = m.scaleServices(ctx, plan, slices.Sorted(maps.Keys(req.Services)), res)
	m.finish(next, res, err)
	for _, name := range slices.Sorted(maps.Keys(req.Services)) {
		m.event(project, ActionScale, map[string]string{"service": name, "replicas": strconv.Itoa(req.Services[name])})
	}
	return res, err
}

// scaleServices converges the named services' replica counts to the plan,
// in the plan's dependency order.
func (m *Manager) scaleServices(ctx context.Context, plan *Plan, names []string, res *UpResult) error {
	observed, err := m.dp.containers(ctx, plan.Project, false)
	if err != nil {
		return err
	}
	if err := m.dp.ensureNetworks(ctx, plan, res); err != nil {
		return err
	}
	watch := &startWatch{}
	for _, sp := range plan.Services {
		if !slices.Contains(names, sp.Name) {
			continue
		}
		if err := m.scaleService(ctx, sp, observed[sp.Name], watch, res); err != nil {
			return fmt.Errorf("service %q: %w", sp.Name, err)
		}
	}
	if m.d.FailWindow > 0 {
		return m.dp.diagnose(ctx, watch, m.d.FailWindow, res)
	}
	return nil
}

func (m *Manager) scaleService(ctx context.Context, sp ServicePlan, observed []container.Summary, watch *startWatch, res *UpResult) error {
	byNumber := map[int]container.Summary{}
	var have []int
	for _, c := range observed {
		n, _ := strconv.Atoi(c.Labels[LabelContainerNumber])
		byNumber[n] = c
		have = append(have, n)
	}
	create, remove := scaleDiff(have, len(sp.Containers))
	for _, n := range remove {
		if err := m.dp.removeContainer(ctx, byNumber[n], res); err != nil {
			return err
		}
	}
	for _, n := range create {
		cp := sp.Containers[n-1]
		id, err := m.dp.createAndStart(ctx, cp, "Created", res)
		if err != nil {
			return err
		}
		watch.add(sp.Name, n, cp.Name, id)
	}
	return nil
}
