package backend

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
)

// projectContainers are the compose containers of a project (all projects
// for ""), pods and records, as `docker ps -a` lists them; no one-offs.
func (b *Backend) projectContainers(ctx context.Context, project string) ([]container.Summary, error) {
	label := compose.LabelProject
	if project != "" {
		label += "=" + project
	}
	return b.List(ctx, runtime.ListOptions{All: true, Filters: filters.New([2]string{"label", label}, [2]string{"label", compose.LabelOneoff + "=False"})})
}

// Ps is berth compose ps: the deployment view the single-host backend
// shows (compose.View), of the containers this backend lists.
func (d *Deployments) Ps(ctx context.Context, project string) ([]compose.Deployment, error) {
	list, err := d.b.projectContainers(ctx, project)
	if err != nil {
		return nil, err
	}
	return compose.View(list), nil
}

// Deployments are the statuses of the projects that have containers: the
// deployment view, with each service's desired replicas from its
// StatefulSet. No deployment records are kept (the cluster has the desired
// state): origin, file hash, networks, volumes and the last deploy are not
// known.
func (d *Deployments) Deployments(ctx context.Context) ([]compose.DeploymentStatus, error) {
	view, err := d.Ps(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []compose.DeploymentStatus{}
	for _, dep := range view {
		st, err := d.status(ctx, dep)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Deployment is one project's status (berth compose ps and logs read it);
// ErrNotFound for a project without containers.
func (d *Deployments) Deployment(ctx context.Context, project string) (*compose.DeploymentStatus, error) {
	view, err := d.Ps(ctx, project)
	if err != nil {
		return nil, err
	}
	dep, ok := compose.Find(view, project)
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	st, err := d.status(ctx, dep)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// status is compose.StatusOf with the desired replicas of the services'
// StatefulSets.
func (d *Deployments) status(ctx context.Context, dep compose.Deployment) (compose.DeploymentStatus, error) {
	st := compose.StatusOf(dep)
	for i := range st.Services {
		n, err := d.b.replicas(ctx, svcKey{d.b.Namespace(dep.Project), st.Services[i].Name})
		switch {
		case errdefs.IsNotFound(err):
			st.Services[i].Desired = 0
		case err != nil:
			return st, err
		default:
			st.Services[i].Desired = n
		}
	}
	return st, nil
}

// Logs is berth compose logs: the pods/log of the project's replicas (of
// some services). Without follow the lines are merged by time; following,
// each replica's lines go out as they come, and it ends when every
// followed pod's log ended (a replica that starts meanwhile is not
// followed: docs/kubernetes.md). A created or stopped replica has no pod,
// so no log.
func (d *Deployments) Logs(ctx context.Context, project string, req compose.LogsRequest) (<-chan compose.LogEntry, error) {
	list, err := d.b.projectContainers(ctx, project)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	services := map[string]bool{}
	for _, c := range list {
		services[c.Labels[compose.LabelService]] = true
	}
	for _, s := range req.Services {
		if !services[s] {
			return nil, errdefs.ErrNotFound.WithMessage("no such service: " + s)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	type stream struct {
		entry compose.LogEntry // the replica's fields
		st    *runtime.LogStream
	}
	var streams []stream
	for _, c := range list {
		k, _ := compose.KeyOf(c.Labels)
		if len(req.Services) > 0 && !slices.Contains(req.Services, k.Service) {
			continue
		}
		st, err := d.b.Logs(ctx, c.ID, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: req.Follow, Tail: req.Tail, Since: req.Since})
		if errdefs.IsNotFound(err) {
			continue // a record: no pod, no log
		}
		if err != nil {
			cancel()
			return nil, err
		}
		streams = append(streams, stream{compose.LogEntry{Service: k.Service, Number: k.Number, Container: strings.TrimPrefix(c.Names[0], "/")}, st})
	}
	out := make(chan compose.LogEntry, 64)
	send := func(e compose.LogEntry) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	entries := func(s stream, each func(compose.LogEntry) bool) {
		defer s.st.Cancel()
		for l := range s.st.Lines {
			e := s.entry
			e.Stream, e.Time, e.Line = l.Stream, l.Time, strings.TrimRight(string(l.Line), "\r\n")
			if !each(e) {
				return
			}
		}
	}
	go func() {
		defer cancel()
		defer close(out)
		var mu sync.Mutex
		var all []compose.LogEntry
		var wg sync.WaitGroup
		for _, s := range streams {
			wg.Go(func() {
				entries(s, func(e compose.LogEntry) bool {
					if req.Follow {
						return send(e)
					}
					mu.Lock()
					all = append(all, e)
					mu.Unlock()
					return true
				})
			})
		}
		wg.Wait()
		slices.SortStableFunc(all, func(a, b compose.LogEntry) int { return a.Time.Compare(b.Time) })
		for _, e := range all {
			if !send(e) {
				return
			}
		}
	}()
	return out, nil
}
