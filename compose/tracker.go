package compose

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerLister lists the containers the tracker starts from and resyncs
// to (*runtime.Service).
type ContainerLister interface {
	List(ctx context.Context, opts runtime.ListOptions) ([]container.Summary, error)
}

// EventSource is the daemon's event bus; *events.Bus satisfies it.
type EventSource interface {
	// Subscribe returns a live channel of messages and a function that ends
	// the subscription (the past messages are not used).
	Subscribe(since time.Time) ([]events.Message, <-chan events.Message, func())
}

// TrackerDeps are what a Tracker needs. The container lister is Run's
// argument rather than a dependency: the tracker feeds the network's DNS
// plugin, the network is a dependency of the runtime, and the runtime is
// the lister, so the tracker exists before the runtime does.
type TrackerDeps struct {
	Events EventSource
	// Resync is how often the tracker re-lists everything, as a safety net
	// for events a busy bus dropped. 0 means 30s.
	Resync time.Duration
	// Settle is how long after a burst of lifecycle events the tracker
	// re-lists, to pick up what events do not carry (ports). 0 means 250ms.
	Settle time.Duration
}

// Tracker keeps the deployment view current: an initial list, then container
// events (whose Actor.Attributes carry the container's labels, name and
// image), plus a re-list shortly after lifecycle events and periodically.
type Tracker struct {
	d TrackerDeps

	mu         sync.RWMutex
	containers map[string]container.Summary // compose containers by ID
	view       []Deployment                 // derived from containers, rebuilt on change
	ready      chan struct{}
	readyOnce  sync.Once
}

// NewTracker checks its dependencies; Run starts it.
func NewTracker(d TrackerDeps) (*Tracker, error) {
	if d.Events == nil {
		return nil, errors.New("compose: tracker needs an event source")
	}
	if d.Resync <= 0 {
		d.Resync = 30 * time.Second
	}
	if d.Settle <= 0 {
		d.Settle = 250 * time.Millisecond
	}
	return &Tracker{d: d, containers: map[string]container.Summary{}, ready: make(chan struct{})}, nil
}

// Run subscribes to events, lists containers, and follows events until ctx
// ends. Subscribing before listing means nothing that happens in between is
// lost: replaying an event the list already reflects converges to the same
// state.
func (t *Tracker) Run(ctx context.Context, containers ContainerLister) error {
	if containers == nil {
		return errors.New("compose: tracker needs a container lister")
	}
	_, ch, cancel := t.d.Events.Subscribe(time.Time{})
	defer cancel()
	if err := t.resync(ctx, containers); err != nil {
		return err
	}
	t.readyOnce.Do(func() { close(t.ready) })
	tick := time.NewTicker(t.d.Resync)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			if t.Apply(m) {
				settle.Reset(t.d.Settle)
			}
		case <-settle.C:
			_ = t.resync(ctx, containers) // the periodic resync retries
		case <-tick.C:
			_ = t.resync(ctx, containers)
		}
	}
}

// Ready is closed once the initial list is in.
func (t *Tracker) Ready() <-chan struct{} { return t.ready }

func (t *Tracker) resync(ctx context.Context, containers ContainerLister) error {
	list, err := containers.List(ctx, runtime.ListOptions{All: true, Filters: filters.New([2]string{"label", LabelProject})})
	if err != nil {
		return err
	}
	m := make(map[string]container.Summary, len(list))
	for _, c := range list {
		if _, ok := KeyOf(c.Labels); ok {
			m[c.ID] = c
		}
	}
	t.mu.Lock()
	t.containers = m
	t.rebuild()
	t.mu.Unlock()
	return nil
}

// attributes that events add beside the container's labels
var nonLabelAttrs = map[string]bool{"name": true, "image": true, "exitCode": true, "signal": true, "oldName": true, "execID": true, "container": true}

// Apply folds one event into the view. It reports whether the event changed
// something that a re-list should complete (ports, health) .
func (t *Tracker) Apply(m events.Message) bool {
	if m.Type != events.ContainerEventType || m.Actor.ID == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, known := t.containers[m.Actor.ID]
	if !known {
		if m.Actor.Attributes[LabelProject] == "" || m.Action == events.ActionDestroy {
			return false
		}
		c = container.Summary{ID: m.Actor.ID, State: container.StateCreated, Created: m.Time}
	}
	c.Labels = maps.Clone(c.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range m.Actor.Attributes {
		if !nonLabelAttrs[k] {
			c.Labels[k] = v
		}
	}
	if n := m.Actor.Attributes["name"]; n != "" {
		c.Names = []string{"/" + strings.TrimPrefix(n, "/")}
	}
	if img := m.Actor.Attributes["image"]; img != "" {
		c.Image = img
	}
	settle := true
	switch {
	case m.Action == events.ActionCreate:
		c.State = container.StateCreated
	case m.Action == events.ActionStart, m.Action == events.ActionRestart, m.Action == events.ActionUnPause:
		c.State = container.StateRunning
	case m.Action == events.ActionPause:
		c.State = container.StatePaused
	case m.Action == events.ActionDie:
		c.State = container.StateExited
	case m.Action == events.ActionDestroy:
		delete(t.containers, c.ID)
		t.rebuild()
		return false
	case strings.HasPrefix(string(m.Action), string(events.ActionHealthStatus)+":"):
		status := strings.TrimSpace(strings.TrimPrefix(string(m.Action), string(events.ActionHealthStatus)+":"))
		c.Health = &container.HealthSummary{Status: container.HealthStatus(status)}
		settle = false
	case m.Action == events.ActionRename:
		// the new name came in the attributes
	default:
		settle = false
	}
	t.containers[c.ID] = c
	t.rebuild()
	return settle
}

// rebuild recomputes the view; call with t.mu held for writing.
func (t *Tracker) rebuild() {
	list := make([]container.Summary, 0, len(t.containers))
	for _, c := range t.containers {
		list = append(list, c)
	}
	t.view = View(list)
}

// Deployments is the current view (callers must not modify it).
func (t *Tracker) Deployments() []Deployment {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.view
}

// Deployment is one project of the current view.
func (t *Tracker) Deployment(project string) (Deployment, bool) {
	return Find(t.Deployments(), project)
}

// HasService reports whether project has a service named service (case
// insensitive, as DNS names are), whatever state its containers are in.
func (t *Tracker) HasService(project, service string) bool {
	d, ok := t.Deployment(project)
	if !ok {
		return false
	}
	return slices.ContainsFunc(d.Services, func(s Service) bool { return strings.EqualFold(s.Name, service) && len(s.Replicas) > 0 })
}
