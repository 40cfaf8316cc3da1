package compose

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// publish sends a container event like the runtime's (labels, name, image
// as attributes); call with e.mu held.
func (e *engine) publish(c *container.InspectResponse, action events.Action) {
	if e.bus == nil {
		return
	}
	attrs := map[string]string{"name": strings.TrimPrefix(c.Name, "/"), "image": c.Config.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	if action == events.ActionDie {
		attrs["exitCode"] = itoa(c.State.ExitCode)
	}
	e.bus.Publish(events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: c.ID, Attributes: attrs}})
}

// Logs serves e.logs[name], one line a millisecond apart from the epoch.
func (e *engine) Logs(_ context.Context, name string, opts runtime.LogsOptions) (*runtime.LogStream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + name)
	}
	lines := e.logs[strings.TrimPrefix(c.Name, "/")]
	if opts.Tail >= 0 && len(lines) > opts.Tail {
		lines = lines[len(lines)-opts.Tail:]
	}
	ch := make(chan runtime.LogLine, len(lines))
	for i, l := range lines {
		at := time.Unix(0, int64(i)*int64(time.Millisecond))
		// "@N text": the line was written at N ms
		if rest, ok := strings.CutPrefix(l, "@"); ok {
			ms, text, _ := strings.Cut(rest, " ")
			n, _ := strconv.Atoi(ms)
			at, l = time.Unix(0, int64(n)*int64(time.Millisecond)), text
		}
		ch <- runtime.LogLine{Stream: "stdout", Line: []byte(l + "\n"), Time: at}
	}
	close(ch)
	return &runtime.LogStream{Lines: ch, Cancel: func() {}}, nil
}

// exit makes a running container exit with code (and publishes die).
func (e *engine) exit(name string, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	c.State = &container.State{Status: container.StateExited, ExitCode: code}
	e.publish(c, events.ActionDie)
}

// puller is a fake registry: refs it has, and whether it answers.
type puller struct {
	mu    sync.Mutex
	e     *engine
	has   map[string]string // ref -> image ID it would give
	down  bool
	pulls []string
}

func (p *puller) PullImage(_ context.Context, ref string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pulls = append(p.pulls, ref)
	if p.down {
		return errdefs.ErrUnavailable.WithMessage("registry is down")
	}
	id, ok := p.has[ref]
	if !ok {
		return errdefs.ErrNotFound.WithMessage("manifest unknown: " + ref)
	}
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	p.e.images[ref] = id
	repo, _, _ := strings.Cut(ref, ":")
	p.e.digests[id] = []string{repo + "@sha256:" + strings.TrimPrefix(id, "sha256:")[:8] + strings.Repeat("0", 56)}
	return nil
}

var runtimeRemoveForce = runtime.RemoveOptions{Force: true}

func runtimeCreate(name string, cfg *container.Config, hc *container.HostConfig) runtime.CreateRequest {
	return runtime.CreateRequest{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: &network.NetworkingConfig{}}
}

// lookup is find for tests: a copy, under the lock.
func (e *engine) lookup(name string) *container.InspectResponse {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return nil
	}
	cp := *c
	st := *c.State
	cp.State = &st
	return &cp
}
