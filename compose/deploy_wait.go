package compose

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// waitDependencies waits until every dependency of sp meets its condition.
// service_started holds already: dependencies start first. An optional
// dependency (required: false) that fails is skipped, as compose does.
func (dp *Deployer) waitDependencies(ctx context.Context, sp ServicePlan, started map[string][]string) error {
	for _, dep := range sp.DependsOn {
		ids, ok := started[dep.Service]
		if !ok || dep.Condition == ConditionStarted {
			continue
		}
		var err error
		switch dep.Condition {
		case ConditionHealthy:
			err = dp.waitReady(ctx, ids, false)
		case ConditionCompleted:
			err = dp.waitCompleted(ctx, dep.Service, ids)
		}
		if err != nil && dep.Required {
			return fmt.Errorf("dependency failed to start: %w", err)
		}
	}
	return nil
}

// waitReady waits until every container runs and, when it has a
// healthcheck, is healthy. anyHealth false means a healthcheck is required
// (depends_on: service_healthy); true accepts containers without one
// (up --wait). An unhealthy container is an error carrying its last check
// output.
func (dp *Deployer) waitReady(ctx context.Context, ids []string, anyHealth bool) error {
	for _, id := range ids {
		err := dp.poll(ctx, id, func(c *container.InspectResponse) (bool, error) {
			name := strings.TrimPrefix(c.Name, "/")
			if c.State == nil {
				return false, nil
			}
			if c.State.Status == container.StateExited || c.State.Status == container.StateDead {
				return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s exited (%d)", name, c.State.ExitCode))
			}
			noCheck := c.Config == nil || c.Config.Healthcheck == nil || len(c.Config.Healthcheck.Test) == 0 || c.Config.Healthcheck.Test[0] == "NONE"
			if noCheck || c.State.Health == nil {
				if !anyHealth {
					return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s has no healthcheck configured", name))
				}
				return c.State.Status == container.StateRunning, nil
			}
			switch c.State.Health.Status {
			case container.Healthy:
				return true, nil
			case container.Unhealthy:
				msg := fmt.Sprintf("container %s is unhealthy", name)
				if n := len(c.State.Health.Log); n > 0 {
					last := c.State.Health.Log[n-1]
					msg += fmt.Sprintf(": last check exited %d: %s", last.ExitCode, strings.TrimSpace(last.Output))
				}
				return false, errdefs.ErrFailedPrecondition.WithMessage(msg)
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (dp *Deployer) waitCompleted(ctx context.Context, service string, ids []string) error {
	for _, id := range ids {
		err := dp.poll(ctx, id, func(c *container.InspectResponse) (bool, error) {
			if c.State == nil || c.State.Status != container.StateExited {
				return false, nil
			}
			if c.State.ExitCode != 0 {
				return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("service %q didn't complete successfully: exit %d", service, c.State.ExitCode))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// poll inspects id until done says so, fails, or ctx ends.
func (dp *Deployer) poll(ctx context.Context, id string, done func(*container.InspectResponse) (bool, error)) error {
	t := time.NewTicker(dp.d.Poll)
	defer t.Stop()
	for {
		c, err := dp.d.Containers.Inspect(ctx, id, false)
		if err != nil {
			return err
		}
		ok, err := done(c)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", strings.TrimPrefix(c.Name, "/"), ctx.Err())
		case <-t.C:
		}
	}
}

// DownRequest is the query of POST /berth/compose/down.
type DownRequest struct {
	Project string
	// Volumes removes the project's named volumes and its containers'
	// anonymous volumes too (down -v).
	Volumes bool
	// Timeout is the stop timeout in seconds; nil is each container's own.
	Timeout *int
}

// Down removes what a project has, found by its label, without its compose
// file (`docker compose -p P down`): containers (one-offs too), the
// project's networks (never external ones: they lack the label) and, when
// asked, its volumes. A project with nothing is not an error.
func (dp *Deployer) Down(ctx context.Context, req DownRequest) (*UpResult, error) {
	if req.Project == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("project name is required")
	}
	res := &UpResult{Project: req.Project}
	byService, err := dp.containers(ctx, req.Project, true)
	if err != nil {
		return nil, err
	}
	for _, cs := range byService {
		for _, c := range cs {
			name := containerSummaryName(c)
			if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
				// NotModified: it ended since the list (a job's run): stopped all the same
				if err := dp.d.Containers.Stop(ctx, c.ID, "", req.Timeout); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsNotModified(err) {
					return res, fmt.Errorf("stop %s: %w", name, err)
				}
				res.Actions = append(res.Actions, Action{Kind: "Container", Name: name, ID: c.ID, Action: "Stopped"})
			}
			if err := dp.d.Containers.Remove(ctx, c.ID, runtime.RemoveOptions{Force: true, RemoveVolumes: req.Volumes}); err != nil && !errdefs.IsNotFound(err) {
				return res, fmt.Errorf("remove %s: %w", name, err)
			}
			res.Actions = append(res.Actions, Action{Kind: "Container", Name: name, ID: c.ID, Action: "Removed"})
		}
	}
	label := filters.New([2]string{"label", LabelProject + "=" + req.Project})
	nets, err := dp.d.Networks.Networks(ctx, label)
	if err != nil {
		return res, err
	}
	for _, n := range nets {
		if err := dp.d.Networks.RemoveNetwork(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
			return res, fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		res.Actions = append(res.Actions, Action{Kind: "Network", Name: n.Name, ID: n.ID, Action: "Removed"})
	}
	if req.Volumes {
		vols, _, err := dp.d.Volumes.List(ctx, label)
		if err != nil {
			return res, err
		}
		for _, v := range vols {
			if err := dp.d.Volumes.Remove(ctx, v.Name, false); err != nil && !errdefs.IsNotFound(err) {
				return res, fmt.Errorf("remove volume %s: %w", v.Name, err)
			}
			res.Actions = append(res.Actions, Action{Kind: "Volume", Name: v.Name, Action: "Removed"})
		}
	}
	return res, nil
}

// Ps is the deployment view of one project, or of all when project is "".
func (dp *Deployer) Ps(ctx context.Context, project string) ([]Deployment, error) {
	label := LabelProject
	if project != "" {
		label += "=" + project
	}
	list, err := dp.d.Containers.List(ctx, runtime.ListOptions{All: true, Filters: filters.New([2]string{"label", label})})
	if err != nil {
		return nil, err
	}
	return View(list), nil
}
