package backend

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

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
// each replica's lines go out as they come, a replica that starts
// meanwhile (a start event from the pod watch) is followed too, and it
// ends when no followed pod's log is left, as on the single-host backend.
// A created or stopped replica has no pod, so no log.
func (d *Deployments) Logs(ctx context.Context, project string, req compose.LogsRequest) (<-chan compose.LogEntry, error) {
	// subscribed before listing: a replica that starts in between is seen
	_, evs, unsubscribe := d.b.bus.Subscribe(time.Time{})
	list, err := d.b.projectContainers(ctx, project)
	if err != nil {
		unsubscribe()
		return nil, err
	}
	if len(list) == 0 {
		unsubscribe()
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	services := map[string]bool{}
	for _, c := range list {
		services[c.Labels[compose.LabelService]] = true
	}
	for _, s := range req.Services {
		if !services[s] {
			unsubscribe()
			return nil, errdefs.ErrNotFound.WithMessage("no such service: " + s)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var streams []logStream
	for _, c := range list {
		k, _ := compose.KeyOf(c.Labels)
		if len(req.Services) > 0 && !slices.Contains(req.Services, k.Service) {
			continue
		}
		s, err := d.openLog(ctx, c.ID, compose.LogEntry{Service: k.Service, Number: k.Number, Container: strings.TrimPrefix(c.Names[0], "/")},
			runtime.LogsOptions{Stdout: true, Stderr: true, Follow: req.Follow, Tail: req.Tail, Since: req.Since})
		if errdefs.IsNotFound(err) {
			continue // a record: no pod, no log
		}
		if err != nil {
			cancel()
			unsubscribe()
			return nil, err
		}
		streams = append(streams, s)
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
	go func() {
		defer cancel()
		defer close(out)
		defer unsubscribe()
		if req.Follow {
			d.followLogs(ctx, project, req.Services, streams, evs, send)
			return
		}
		var mu sync.Mutex
		var all []compose.LogEntry
		var wg sync.WaitGroup
		for _, s := range streams {
			wg.Go(func() {
				s.entries(func(e compose.LogEntry) bool {
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

// logStream is one replica's pods/log, with the replica's fields.
type logStream struct {
	id    string
	entry compose.LogEntry
	st    *runtime.LogStream
}

func (d *Deployments) openLog(ctx context.Context, id string, entry compose.LogEntry, o runtime.LogsOptions) (logStream, error) {
	st, err := d.b.Logs(ctx, id, o)
	return logStream{id, entry, st}, err
}

// entries passes each line as an entry to each until it says stop.
func (s logStream) entries(each func(compose.LogEntry) bool) {
	defer s.st.Cancel()
	for l := range s.st.Lines {
		e := s.entry
		e.Stream, e.Time, e.Line = l.Stream, l.Time, strings.TrimRight(string(l.Line), "\r\n")
		if !each(e) {
			return
		}
	}
}

// followLogs sends the followed streams' lines as they come, adds the
// replicas of the project (of services, when given) that start, and
// returns once no stream is left.
func (d *Deployments) followLogs(ctx context.Context, project string, services []string, streams []logStream, evs <-chan events.Message, send func(compose.LogEntry) bool) {
	ended := make(chan string)
	followed := map[string]bool{}
	follow := func(s logStream) {
		followed[s.id] = true
		go func() {
			s.entries(send)
			select {
			case ended <- s.id:
			case <-ctx.Done():
			}
		}()
	}
	for _, s := range streams {
		follow(s)
	}
	for len(followed) > 0 {
		select {
		case <-ctx.Done():
			return
		case id := <-ended:
			delete(followed, id) // a replica whose pod comes back is followed again
		case msg, ok := <-evs:
			if !ok {
				return
			}
			k, ours := compose.KeyOf(msg.Actor.Attributes)
			if !ours || k.OneOff || k.Project != project || msg.Type != events.ContainerEventType || msg.Action != events.ActionStart ||
				len(services) > 0 && !slices.Contains(services, k.Service) || followed[msg.Actor.ID] {
				continue
			}
			entry := compose.LogEntry{Service: k.Service, Number: k.Number, Container: msg.Actor.Attributes["name"]}
			s, err := d.openLog(ctx, msg.Actor.ID, entry, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1, Since: time.Unix(0, msg.TimeNano).Add(-time.Second)})
			if err == nil {
				follow(s)
			}
		}
	}
}
