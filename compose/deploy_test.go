package compose

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/events"
	"github.com/berthd/berth/internal/filters"
	bnetwork "github.com/berthd/berth/network"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/volume"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	mvolume "github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The services berthd wires in satisfy the deployer's interfaces.
var (
	_ ContainerService = (*runtime.Service)(nil)
	_ ContainerLister  = (*runtime.Service)(nil)
	_ EventSource      = (*events.Bus)(nil)
	_ NetworkService   = (*bnetwork.Manager)(nil)
	_ VolumeService    = (*volume.Service)(nil)
	_ ImageService     = (*registry.Service)(nil)
)

// engine is an in-memory fake of the containers, networks, volumes and
// images services. Started containers with a healthcheck become healthy
// (or health says otherwise per container name); ones whose command is
// ["true"] exit 0 at once.
type engine struct {
	mu         sync.Mutex
	n          int
	containers map[string]*container.InspectResponse
	networks   map[string]network.Inspect
	volumes    map[string]*mvolume.Volume
	images     map[string]string
	health     map[string]container.HealthStatus // by container name
	calls      []string
	logs       map[string][]string // by container name
	digests    map[string][]string // image ID -> RepoDigests
	bus        *events.Bus         // when set, container events go here
}

func newEngine() *engine {
	return &engine{
		containers: map[string]*container.InspectResponse{},
		networks:   map[string]network.Inspect{},
		volumes:    map[string]*mvolume.Volume{},
		images:     map[string]string{"busybox:latest": busyboxID},
		health:     map[string]container.HealthStatus{},
		logs:       map[string][]string{},
		digests:    map[string][]string{},
	}
}

func (e *engine) id() string { e.n++; return fmt.Sprintf("%064x", e.n) }

func (e *engine) call(format string, args ...any) {
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
}

func (e *engine) find(name string) *container.InspectResponse {
	for id, c := range e.containers {
		if id == name || c.Name == "/"+name {
			return c
		}
	}
	return nil
}

func (e *engine) Create(_ context.Context, req runtime.CreateRequest) (container.CreateResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.find(req.Name) != nil {
		return container.CreateResponse{}, errdefs.ErrConflict.WithMessage("name in use: " + req.Name)
	}
	for n := range req.NetworkingConfig.EndpointsConfig {
		if _, ok := e.networks[n]; !ok {
			return container.CreateResponse{}, errdefs.ErrNotFound.WithMessage("network " + n + " not found")
		}
	}
	id := e.id()
	e.containers[id] = &container.InspectResponse{ID: id, Name: "/" + req.Name, Config: req.Config, HostConfig: req.HostConfig, State: &container.State{Status: container.StateCreated}}
	e.call("create %s", req.Name)
	e.publish(e.containers[id], "create")
	return container.CreateResponse{ID: id}, nil
}

func (e *engine) Start(_ context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return errdefs.ErrNotFound.WithMessage("No such container: " + name)
	}
	c.State = &container.State{Status: container.StateRunning, Running: true}
	if slices.Equal(c.Config.Cmd, []string{"true"}) {
		c.State = &container.State{Status: container.StateExited}
	}
	if slices.Equal(c.Config.Cmd, []string{"false"}) {
		c.State = &container.State{Status: container.StateExited, ExitCode: 1}
	}
	if hc := c.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		st := e.health[strings.TrimPrefix(c.Name, "/")]
		if st == "" {
			st = container.Healthy
		}
		c.State.Health = &container.Health{Status: st, Log: []*container.HealthcheckResult{{ExitCode: 1, Output: "wget: can't connect to remote host\n"}}}
	}
	e.call("start %s", strings.TrimPrefix(c.Name, "/"))
	e.publish(c, "start")
	if c.State.Status == container.StateExited {
		e.publish(c, "die")
	}
	return nil
}

func (e *engine) Stop(_ context.Context, name, _ string, _ *int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return errdefs.ErrNotFound.WithMessage("No such container: " + name)
	}
	running := c.State.Status == container.StateRunning
	if !running && c.State.Status != container.StatePaused && c.State.Status != container.StateRestarting {
		return errdefs.ErrNotModified.WithMessage("container already stopped") // as runtime.Stop
	}
	c.State = &container.State{Status: container.StateExited, ExitCode: c.State.ExitCode}
	if running {
		c.State.ExitCode = 137
	}
	e.call("stop %s", strings.TrimPrefix(c.Name, "/"))
	if running {
		e.publish(c, "die")
	}
	return nil
}

func (e *engine) Remove(_ context.Context, name string, _ runtime.RemoveOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return errdefs.ErrNotFound.WithMessage("No such container: " + name)
	}
	delete(e.containers, c.ID)
	e.call("rm %s", strings.TrimPrefix(c.Name, "/"))
	e.publish(c, "destroy")
	return nil
}

func (e *engine) List(_ context.Context, opts runtime.ListOptions) ([]container.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []container.Summary
	for _, c := range e.containers {
		if !opts.Filters.MatchKVList("label", c.Config.Labels) {
			continue
		}
		out = append(out, container.Summary{ID: c.ID, Names: []string{c.Name}, Labels: c.Config.Labels, State: c.State.Status, Image: c.Config.Image, ImageID: c.Config.Labels[LabelImage]})
	}
	return out, nil
}

func (e *engine) Inspect(_ context.Context, name string, _ bool) (*container.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + name)
	}
	cp := *c
	return &cp, nil
}

func (e *engine) InspectNetwork(_ context.Context, name string) (network.Inspect, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n, ok := e.networks[name]; ok {
		return n, nil
	}
	return network.Inspect{}, errdefs.ErrNotFound.WithMessage("network " + name + " not found")
}

func (e *engine) CreateNetwork(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.id()
	e.networks[req.Name] = network.Inspect{Network: network.Network{ID: id, Name: req.Name, Labels: req.Labels}}
	e.call("network create %s", req.Name)
	return network.CreateResponse{ID: id}, nil
}

func (e *engine) RemoveNetwork(_ context.Context, idOrName string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, n := range e.networks {
		if n.ID == idOrName || name == idOrName {
			delete(e.networks, name)
			e.call("network rm %s", name)
			return nil
		}
	}
	return errdefs.ErrNotFound.WithMessage("network " + idOrName + " not found")
}

func (e *engine) Networks(_ context.Context, f filters.Args) ([]network.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []network.Summary
	for _, n := range e.networks {
		if f.MatchKVList("label", n.Labels) {
			out = append(out, network.Summary{Network: n.Network})
		}
	}
	return out, nil
}

func (e *engine) Get(_ context.Context, name string) (*mvolume.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.volumes[name]; ok {
		return v, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
}

func (e *engine) List2(_ context.Context, f filters.Args) ([]*mvolume.Volume, []string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*mvolume.Volume
	for _, v := range e.volumes {
		if f.MatchKVList("label", v.Labels) {
			out = append(out, v)
		}
	}
	return out, nil, nil
}

func (e *engine) Remove2(_ context.Context, name string, _ bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.volumes, name)
	e.call("volume rm %s", name)
	return nil
}

func (e *engine) Create2(_ context.Context, req mvolume.CreateRequest) (*mvolume.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := &mvolume.Volume{Name: req.Name, Labels: req.Labels, Driver: "local"}
	e.volumes[req.Name] = v
	e.call("volume create %s", req.Name)
	return v, nil
}

func (e *engine) ImageInspect(_ context.Context, ref string) (*image.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.images[ref]; ok {
		return &image.InspectResponse{ID: id, RepoDigests: e.digests[id]}, nil
	}
	for _, id := range e.images {
		if id == ref || slices.Contains(e.digests[id], ref) {
			return &image.InspectResponse{ID: id, RepoDigests: e.digests[id]}, nil
		}
	}
	return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

// the volume and image sides have method names the container side uses too
type engineVolumes struct{ *engine }

func (v engineVolumes) Create(ctx context.Context, req mvolume.CreateRequest) (*mvolume.Volume, error) {
	return v.Create2(ctx, req)
}
func (v engineVolumes) List(ctx context.Context, f filters.Args) ([]*mvolume.Volume, []string, error) {
	return v.List2(ctx, f)
}
func (v engineVolumes) Remove(ctx context.Context, name string, force bool) error {
	return v.Remove2(ctx, name, force)
}

type engineImages struct{ *engine }

func (i engineImages) Inspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	return i.ImageInspect(ctx, ref)
}

func newDeployer(t *testing.T, e *engine) *Deployer {
	t.Helper()
	dp, err := NewDeployer(DeployerDeps{Containers: e, Networks: e, Volumes: engineVolumes{e}, Images: engineImages{e}, Logs: e, Poll: time.Millisecond})
	assert.NilError(t, err)
	return dp
}

func upReq(t *testing.T, project string) UpRequest {
	return UpRequest{LoadOptions: LoadOptions{WorkingDir: testdataDir(t, project), ConfigFiles: []string{"compose.yaml"}}, Timeout: 10}
}

func actions(res *UpResult) []string {
	var out []string
	for _, a := range res.Actions {
		out = append(out, a.Kind+" "+a.Name+" "+a.Action)
	}
	return out
}

func TestDeployerUpIsIdempotent(t *testing.T) {
	e := newEngine()
	dp := newDeployer(t, e)
	res, err := dp.Up(context.Background(), upReq(t, "app"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(actions(res), []string{
		"Network app_back Created", "Network app_front Created", "Volume app_data Created",
		"Container app-db-1 Created", "Container app-db-1 Started",
		"Container app-web-1 Created", "Container app-web-1 Started",
		"Container app-worker-1 Created", "Container app-worker-1 Started",
	}))

	res, err = dp.Up(context.Background(), upReq(t, "app"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(actions(res), []string{"Container app-db-1 Running", "Container app-web-1 Running", "Container app-worker-1 Running"}))

	view, err := dp.Ps(context.Background(), "app")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(view, 1))
	assert.Check(t, is.Len(view[0].Services, 3))
	assert.Check(t, is.Equal(view[0].Services[0].Replicas[0].Name, "app-db-1"))
}

func TestDeployerRecreatesAndScales(t *testing.T) {
	e := newEngine()
	dp := newDeployer(t, e)
	dir := t.TempDir()
	write := func(replicas int, env string) {
		y := fmt.Sprintf("name: sc\nservices:\n  w:\n    image: busybox:latest\n    command: [sleep, infinity]\n    environment: [X=%s]\n    deploy:\n      replicas: %d\n", env, replicas)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(y), 0o644))
	}
	req := UpRequest{LoadOptions: LoadOptions{WorkingDir: dir}}
	write(3, "a")
	_, err := dp.Up(context.Background(), req)
	assert.NilError(t, err)

	write(2, "a")
	res, err := dp.Up(context.Background(), req)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(actions(res), []string{"Container sc-w-3 Removed", "Container sc-w-1 Running", "Container sc-w-2 Running"}))

	write(2, "b")
	res, err = dp.Up(context.Background(), req)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(actions(res), []string{"Container sc-w-1 Recreated", "Container sc-w-1 Started", "Container sc-w-2 Recreated", "Container sc-w-2 Started"}))

	// a stopped replica is started again, not recreated
	assert.NilError(t, e.Stop(context.Background(), "sc-w-1", "", nil))
	res, err = dp.Up(context.Background(), req)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(actions(res), []string{"Container sc-w-1 Started", "Container sc-w-2 Running"}))
}

func TestDeployerErrors(t *testing.T) {
	t.Run("external network missing", func(t *testing.T) {
		_, err := newDeployer(t, newEngine()).Up(context.Background(), upReq(t, "shop"))
		assert.Check(t, errdefs.IsNotFound(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, "network berth-shared declared as external, but could not be found"))
	})
	t.Run("missing image", func(t *testing.T) {
		e := newEngine()
		delete(e.images, "busybox:latest")
		_, err := newDeployer(t, e).Up(context.Background(), upReq(t, "app"))
		assert.Check(t, errdefs.IsNotFound(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, "No such image: busybox:latest"))
		assert.Check(t, is.Len(e.calls, 0), "nothing is created before the plan is complete")
	})
	t.Run("unhealthy dependency carries the health log", func(t *testing.T) {
		e := newEngine()
		e.health["app-db-1"] = container.Unhealthy
		_, err := newDeployer(t, e).Up(context.Background(), upReq(t, "app"))
		assert.Check(t, is.ErrorContains(err, `service "web": dependency failed to start: container app-db-1 is unhealthy: last check exited 1: wget: can't connect to remote host`))
		assert.Check(t, !slices.Contains(e.calls, "create app-web-1"))
	})
	t.Run("a healthcheck that never passes times out", func(t *testing.T) {
		e := newEngine()
		e.health["app-db-1"] = container.Starting
		req := upReq(t, "app")
		req.Timeout = 1
		_, err := newDeployer(t, e).Up(context.Background(), req)
		assert.Check(t, is.ErrorContains(err, "waiting for app-db-1"))
	})
	t.Run("completed_successfully", func(t *testing.T) {
		dir := t.TempDir()
		y := "name: job\nservices:\n  migrate:\n    image: busybox:latest\n    command: [\"false\"]\n  app:\n    image: busybox:latest\n    command: [sleep, infinity]\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n"
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(y), 0o644))
		_, err := newDeployer(t, newEngine()).Up(context.Background(), UpRequest{LoadOptions: LoadOptions{WorkingDir: dir}, Timeout: 5})
		assert.Check(t, is.ErrorContains(err, `service "migrate" didn't complete successfully: exit 1`))
	})
	t.Run("network of another project", func(t *testing.T) {
		e := newEngine()
		e.networks["app_back"] = network.Inspect{Network: network.Network{ID: "x", Name: "app_back"}}
		_, err := newDeployer(t, e).Up(context.Background(), upReq(t, "app"))
		assert.Check(t, errdefs.IsConflict(err), "%v", err)
	})
}

// exitsFirst is a container service whose containers end on their own
// just before a stop reaches them: a job's run that ends as down begins.
type exitsFirst struct{ *engine }

func (x exitsFirst) Stop(ctx context.Context, name, signal string, timeout *int) error {
	x.mu.Lock()
	if c := x.find(name); c != nil {
		c.State = &container.State{Status: container.StateExited}
	}
	x.mu.Unlock()
	return x.engine.Stop(ctx, name, signal, timeout)
}

// A container listed running that has exited when its stop arrives (304)
// is what down wants: it is removed, and down goes on (make demo's down
// failed so when the cron job of its project had just run).
func TestDeployerDownWhileContainersExit(t *testing.T) {
	e := newEngine()
	_, err := newDeployer(t, e).Up(context.Background(), upReq(t, "app"))
	assert.NilError(t, err)
	dp, err := NewDeployer(DeployerDeps{Containers: exitsFirst{e}, Networks: e, Volumes: engineVolumes{e}, Images: engineImages{e}, Logs: e, Poll: time.Millisecond})
	assert.NilError(t, err)
	res, err := dp.Down(context.Background(), DownRequest{Project: "app"})
	assert.NilError(t, err)
	assert.Check(t, slices.Contains(actions(res), "Container app-web-1 Removed"), "%v", actions(res))
	e.mu.Lock()
	assert.Check(t, is.Len(e.containers, 0))
	e.mu.Unlock()
}

func TestDeployerDown(t *testing.T) {
	e := newEngine()
	dp := newDeployer(t, e)
	e.networks["berth-shared"] = network.Inspect{Network: network.Network{ID: "shared", Name: "berth-shared"}}
	_, err := dp.Up(context.Background(), upReq(t, "shop"))
	assert.NilError(t, err)
	_, err = dp.Up(context.Background(), upReq(t, "app"))
	assert.NilError(t, err)

	res, err := dp.Down(context.Background(), DownRequest{Project: "app", Volumes: true})
	assert.NilError(t, err)
	got := actions(res)
	slices.Sort(got)
	assert.Check(t, is.DeepEqual(got, []string{
		"Container app-db-1 Removed", "Container app-db-1 Stopped",
		"Container app-web-1 Removed", "Container app-web-1 Stopped",
		"Container app-worker-1 Removed", "Container app-worker-1 Stopped",
		"Network app_back Removed", "Network app_front Removed", "Volume app_data Removed",
	}))
	// shop and the external network are untouched
	assert.Check(t, is.DeepEqual(slices.Sorted(maps.Keys(e.networks)), []string{"berth-shared", "shop_default"}))
	view, err := dp.Ps(context.Background(), "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(view, 1))
	assert.Check(t, is.Equal(view[0].Project, "shop"))

	_, err = dp.Down(context.Background(), DownRequest{})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	res, err = dp.Down(context.Background(), DownRequest{Project: "nothing"})
	assert.NilError(t, err)
	assert.Check(t, is.Len(res.Actions, 0))
}
