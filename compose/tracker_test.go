package compose

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

type fakeLister struct {
	mu   sync.Mutex
	list []container.Summary
	n    int
}

func (f *fakeLister) List(_ context.Context, opts runtime.ListOptions) ([]container.Summary, error) {
	if !opts.All || !opts.Filters.Has("label") {
		return nil, errors.New("the tracker lists all compose containers")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return append([]container.Summary(nil), f.list...), nil
}

func (f *fakeLister) set(l ...container.Summary) {
	f.mu.Lock()
	f.list = l
	f.mu.Unlock()
}

type fakeSource struct{ ch chan events.Message }

func (f fakeSource) Subscribe(time.Time) ([]events.Message, <-chan events.Message, func()) {
	return nil, f.ch, func() {}
}

func ev(action events.Action, id string, attrs map[string]string) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}}
}

func attrs(name string, l map[string]string) map[string]string {
	a := map[string]string{"name": name, "image": "busybox:latest"}
	for k, v := range l {
		a[k] = v
	}
	return a
}

// replicaState summarises a view as project/service/number -> state(health).
func replicaStates(v []Deployment) map[string]string {
	out := map[string]string{}
	for _, d := range v {
		for _, s := range d.Services {
			for _, r := range s.Replicas {
				out[r.Name] = string(r.State) + "/" + string(r.Health)
			}
		}
	}
	return out
}

func TestTrackerApply(t *testing.T) {
	tr, err := NewTracker(TrackerDeps{Events: fakeSource{}})
	assert.NilError(t, err)
	a := attrs("shop-web-1", labels("shop", "web", 1))
	steps := []struct {
		m      events.Message
		settle bool
		want   map[string]string
	}{
		{m: ev(events.ActionCreate, "c1", a), settle: true, want: map[string]string{"shop-web-1": "created/"}},
		{m: ev(events.ActionStart, "c1", a), settle: true, want: map[string]string{"shop-web-1": "running/"}},
		{m: ev(events.ActionHealthStatusHealthy, "c1", a), want: map[string]string{"shop-web-1": "running/healthy"}},
		{m: ev(events.ActionExecStart, "c1", a), want: map[string]string{"shop-web-1": "running/healthy"}},
		{m: ev(events.ActionCreate, "plain", map[string]string{"name": "plain"}), want: map[string]string{"shop-web-1": "running/healthy"}},
		{m: ev(events.ActionDie, "c1", attrs("shop-web-1", labels("shop", "web", 1))), settle: true, want: map[string]string{"shop-web-1": "exited/healthy"}},
		{m: ev(events.ActionRename, "c1", attrs("abc_shop-web-1", labels("shop", "web", 1))), settle: true, want: map[string]string{"abc_shop-web-1": "exited/healthy"}},
		{m: ev(events.ActionDestroy, "c1", a), want: map[string]string{}},
		{m: ev(events.ActionDestroy, "c1", a), want: map[string]string{}},
	}
	for i, s := range steps {
		assert.Check(t, is.Equal(tr.Apply(s.m), s.settle), "step %d", i)
		assert.Check(t, is.DeepEqual(replicaStates(tr.Deployments()), s.want), "step %d", i)
	}
}

func TestTrackerRun(t *testing.T) {
	l := &fakeLister{}
	l.set(summary("db1", "shop-db-1", labels("shop", "db", 1), container.StateRunning))
	src := fakeSource{ch: make(chan events.Message, 10)}
	tr, err := NewTracker(TrackerDeps{Events: src, Settle: 10 * time.Millisecond})
	assert.NilError(t, err)
	assert.Check(t, is.ErrorContains(tr.Run(context.Background(), nil), "lister"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx, l) }()
	<-tr.Ready()
	assert.Check(t, is.DeepEqual(replicaStates(tr.Deployments()), map[string]string{"shop-db-1": "running/"}))

	// an event arrives; the settle re-list then brings the ports the event lacks
	web := summary("web1", "shop-web-1", labels("shop", "web", 1), container.StateRunning)
	web.Ports = []container.PortSummary{{PrivatePort: 80, PublicPort: 32768, Type: "tcp"}}
	l.set(summary("db1", "shop-db-1", labels("shop", "db", 1), container.StateRunning), web)
	src.ch <- ev(events.ActionStart, "web1", attrs("shop-web-1", labels("shop", "web", 1)))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		d, ok := tr.Deployment("shop")
		if ok && len(d.Services) == 2 && len(d.Services[1].Replicas) == 1 && len(d.Services[1].Replicas[0].Ports) == 1 {
			return poll.Success()
		}
		return poll.Continue("waiting for the re-list")
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(5*time.Millisecond))
	cancel()
	assert.NilError(t, <-done)
}

func TestNewTrackerChecksDeps(t *testing.T) {
	_, err := NewTracker(TrackerDeps{})
	assert.Check(t, is.ErrorContains(err, "needs"))
}
