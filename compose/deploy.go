package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// The services deploying goes through: the same ones the Engine API uses,
// so a native deploy and `docker compose` make the same objects and events.

// ContainerService is what deploying needs of the runtime (*runtime.Service).
type ContainerService interface {
	Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error)
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name, signal string, timeout *int) error
	Remove(ctx context.Context, name string, opts runtime.RemoveOptions) error
	List(ctx context.Context, opts runtime.ListOptions) ([]container.Summary, error)
	// Inspect returns ErrNotFound for an unknown container.
	Inspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
}

// LogService reads containers' logs (*runtime.Service).
type LogService interface {
	// Logs returns ErrNotFound for an unknown container.
	Logs(ctx context.Context, name string, opts runtime.LogsOptions) (*runtime.LogStream, error)
}

// NetworkService is what deploying needs of the network manager.
type NetworkService interface {
	// InspectNetwork returns ErrNotFound for an unknown network.
	InspectNetwork(ctx context.Context, idOrName string) (network.Inspect, error)
	CreateNetwork(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	RemoveNetwork(ctx context.Context, idOrName string) error
	Networks(ctx context.Context, f filters.Args) ([]network.Summary, error)
}

// VolumeService is what deploying needs of the volume service.
type VolumeService interface {
	Create(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	// Get returns ErrNotFound for an unknown volume.
	Get(ctx context.Context, name string) (*volume.Volume, error)
	List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error)
	Remove(ctx context.Context, name string, force bool) error
}

// ImageService resolves image references to local images.
type ImageService interface {
	// Inspect returns ErrNotFound ("No such image: x") for a missing image.
	Inspect(ctx context.Context, ref string) (*image.InspectResponse, error)
}

// DeployerDeps are what a Deployer needs.
type DeployerDeps struct {
	Containers ContainerService
	Networks   NetworkService
	Volumes    VolumeService
	Images     ImageService
	Logs       LogService
	// Poll is how often waiting for health or completion looks; 0 means 250ms.
	Poll time.Duration
}

// Deployer applies plans: berth's native `compose up`, `ps` and `down`.
type Deployer struct {
	d DeployerDeps
}

// NewDeployer checks its dependencies.
func NewDeployer(d DeployerDeps) (*Deployer, error) {
	if d.Containers == nil || d.Networks == nil || d.Volumes == nil || d.Images == nil || d.Logs == nil {
		return nil, errors.New("compose: the deployer needs containers, networks, volumes, images and logs")
	}
	if d.Poll <= 0 {
		d.Poll = 250 * time.Millisecond
	}
	return &Deployer{d: d}, nil
}

// UpRequest is the body of POST /berth/compose/up.
type UpRequest struct {
	LoadOptions
	// FromRecord deploys the project ProjectName as its record has it,
	// without files (`berth compose up -p shop`).
	FromRecord bool `json:",omitempty"`
	// Wait waits for every container to run, and to be healthy when it has
	// a healthcheck (compose up --wait).
	Wait bool
	// Timeout bounds waiting for dependencies and Wait, in seconds; 0 means
	// no bound but the request's.
	Timeout int
	// RemoveOrphans removes the containers of services the project no
	// longer has (compose up --remove-orphans); without it they stay and
	// the result warns about them, as compose does.
	RemoveOrphans bool `json:",omitempty"`
}

// Action is what up or down did to one object.
type Action struct {
	Kind   string // Network, Volume, Container
	Name   string
	ID     string `json:",omitempty"`
	Action string // Created, Started, Running, Recreated, Removed, Stopped
}

// UpResult is the answer of POST /berth/compose/up (and of down and scale).
type UpResult struct {
	Project  string
	Actions  []Action
	Drift    []Drift          `json:",omitempty"`
	Restored []string         `json:",omitempty"`
	Failures []ReplicaFailure `json:",omitempty"`
	Warnings []string         `json:",omitempty"`
}

// Up loads, plans and converges the project the way `docker compose up -d`
// does: objects that exist with the expected config hash are kept (and
// started), changed ones are recreated, missing ones created; services start
// in dependency order, each after its dependencies meet their depends_on
// conditions; replicas above the planned scale are removed. It deploys from
// local images and keeps no record (Manager.Up does both).
func (dp *Deployer) Up(ctx context.Context, req UpRequest) (*UpResult, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	p, err := Load(ctx, req.LoadOptions)
	if err != nil {
		return nil, err
	}
	images := map[string]string{}
	for _, ref := range ImageRefs(p) {
		img, err := dp.d.Images.Inspect(ctx, ref)
		if err != nil {
			return nil, err
		}
		images[ref] = img.ID
	}
	plan, err := NewPlan(p, images)
	if err != nil {
		return nil, err
	}
	res := &UpResult{Project: plan.Project}
	return res, dp.apply(ctx, plan, applyOptions{wait: req.Wait, removeOrphans: req.RemoveOrphans}, res)
}

// applyOptions say how apply converges.
type applyOptions struct {
	wait          bool
	removeOrphans bool
	// rolling recreates a changed service one replica at a time, each
	// running (and healthy, with a healthcheck) before the next goes.
	rolling bool
	// failWindow > 0 watches the replicas started for that long and fails
	// the deploy with the exit code and last lines of one that exits.
	failWindow time.Duration
}

// apply converges the engine to a plan, recording what it does in res.
func (dp *Deployer) apply(ctx context.Context, plan *Plan, opts applyOptions, res *UpResult) error {
	if err := dp.ensureNetworks(ctx, plan, res); err != nil {
		return err
	}
	if err := dp.ensureVolumes(ctx, plan, res); err != nil {
		return err
	}
	observed, err := dp.containers(ctx, plan.Project, false)
	if err != nil {
		return err
	}
	if err := dp.orphans(ctx, plan, observed, opts.removeOrphans, res); err != nil {
		return err
	}
	started := map[string][]string{} // service -> container IDs
	watch := &startWatch{}
	for _, sp := range plan.Services {
		if err := dp.waitDependencies(ctx, sp, started); err != nil {
			return fmt.Errorf("service %q: %w", sp.Name, err)
		}
		ids, err := dp.ensureService(ctx, plan, sp, observed[sp.Name], opts, watch, res)
		if err != nil {
			return fmt.Errorf("service %q: %w", sp.Name, err)
		}
		started[sp.Name] = ids
	}
	if opts.failWindow > 0 {
		if err := dp.diagnose(ctx, watch, opts.failWindow, res); err != nil {
			return err
		}
	}
	if opts.wait {
		for _, sp := range plan.Services {
			if err := dp.waitReady(ctx, started[sp.Name], true); err != nil {
				return fmt.Errorf("service %q: %w", sp.Name, err)
			}
		}
	}
	return nil
}

// orphans are the containers of services the plan does not have: removed
// when asked, else warned about, as compose does.
func (dp *Deployer) orphans(ctx context.Context, plan *Plan, observed map[string][]container.Summary, remove bool, res *UpResult) error {
	planned := map[string]bool{}
	for _, sp := range plan.Services {
		planned[sp.Name] = true
	}
	var names []string
	for _, svc := range slices.Sorted(maps.Keys(observed)) {
		if planned[svc] {
			continue
		}
		for _, c := range observed[svc] {
			if !remove {
				names = append(names, containerSummaryName(c))
				continue
			}
			if err := dp.removeContainer(ctx, c, res); err != nil {
				return err
			}
		}
	}
	if len(names) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(names, ", ")))
	}
	return nil
}

func (dp *Deployer) ensureNetworks(ctx context.Context, plan *Plan, res *UpResult) error {
	for _, np := range plan.Networks {
		nw, err := dp.d.Networks.InspectNetwork(ctx, np.Name)
		switch {
		case err == nil:
			if !np.External && nw.Labels[LabelProject] != plan.Project {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("network %s exists but was not created for project %q; set external: true to use it", np.Name, plan.Project))
			}
		case errdefs.IsNotFound(err) && np.External:
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s declared as external, but could not be found", np.Name))
		case errdefs.IsNotFound(err):
			resp, err := dp.d.Networks.CreateNetwork(ctx, np.Request)
			if err != nil {
				return fmt.Errorf("network %s: %w", np.Name, err)
			}
			res.Actions = append(res.Actions, Action{Kind: "Network", Name: np.Name, ID: resp.ID, Action: "Created"})
		default:
			return err
		}
	}
	return nil
}

func (dp *Deployer) ensureVolumes(ctx context.Context, plan *Plan, res *UpResult) error {
	for _, vp := range plan.Volumes {
		_, err := dp.d.Volumes.Get(ctx, vp.Name)
		switch {
		case err == nil:
		case errdefs.IsNotFound(err) && vp.External:
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("external volume %q not found", vp.Name))
		case errdefs.IsNotFound(err):
			if _, err := dp.d.Volumes.Create(ctx, vp.Request); err != nil {
				return fmt.Errorf("volume %s: %w", vp.Name, err)
			}
			res.Actions = append(res.Actions, Action{Kind: "Volume", Name: vp.Name, Action: "Created"})
		default:
			return err
		}
	}
	return nil
}

// containers lists a project's containers by service (one-offs only when
// asked), each service's sorted by number.
func (dp *Deployer) containers(ctx context.Context, project string, oneOffs bool) (map[string][]container.Summary, error) {
	list, err := dp.d.Containers.List(ctx, runtime.ListOptions{All: true, Filters: filters.New([2]string{"label", LabelProject + "=" + project})})
	if err != nil {
		return nil, err
	}
	out := map[string][]container.Summary{}
	for _, c := range list {
		k, ok := KeyOf(c.Labels)
		if !ok || k.Project != project || (k.OneOff && !oneOffs) {
			continue
		}
		out[k.Service] = append(out[k.Service], c)
	}
	for _, cs := range out {
		slices.SortFunc(cs, func(a, b container.Summary) int {
			na, _ := strconv.Atoi(a.Labels[LabelContainerNumber])
			nb, _ := strconv.Atoi(b.Labels[LabelContainerNumber])
			return na - nb
		})
	}
	return out, nil
}

// ensureService converges one service's replicas and returns their IDs.
// Replicas above the plan's scale go first, highest number first.
func (dp *Deployer) ensureService(ctx context.Context, plan *Plan, sp ServicePlan, observed []container.Summary, opts applyOptions, watch *startWatch, res *UpResult) ([]string, error) {
	byNumber := map[int]container.Summary{}
	var extra []container.Summary
	for _, c := range observed {
		n, _ := strconv.Atoi(c.Labels[LabelContainerNumber])
		if _, dup := byNumber[n]; dup || n > len(sp.Containers) || n < 1 {
			extra = append(extra, c)
			continue
		}
		byNumber[n] = c
	}
	for _, c := range slices.Backward(extra) {
		if err := dp.removeContainer(ctx, c, res); err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, cp := range sp.Containers {
		c, exists := byNumber[cp.Number]
		if exists && c.Labels[LabelConfigHash] == sp.ConfigHash && c.Labels[LabelImage] == sp.ImageID {
			if c.State == container.StateRunning || c.State == container.StateRestarting {
				res.Actions = append(res.Actions, Action{Kind: "Container", Name: cp.Name, ID: c.ID, Action: "Running"})
			} else if err := dp.start(ctx, cp.Name, c.ID, res); err != nil {
				return nil, err
			} else {
				watch.add(sp.Name, cp.Number, cp.Name, c.ID)
			}
			ids = append(ids, c.ID)
			continue
		}
		action := "Created"
		if exists {
			if err := dp.removeContainer(ctx, c, nil); err != nil {
				return nil, err
			}
			action = "Recreated"
		}
		id, err := dp.createAndStart(ctx, cp, action, res)
		if err != nil {
			return nil, err
		}
		watch.add(sp.Name, cp.Number, cp.Name, id)
		ids = append(ids, id)
		if exists && opts.rolling && cp.Number < len(sp.Containers) {
			// the next replica goes only once this one serves
			if err := dp.waitReady(ctx, []string{id}, true); err != nil {
				return nil, fmt.Errorf("rolling update stopped at %s: %w", cp.Name, err)
			}
		}
	}
	return ids, nil
}

// createAndStart creates and starts one replica.
func (dp *Deployer) createAndStart(ctx context.Context, cp ContainerPlan, action string, res *UpResult) (string, error) {
	resp, err := dp.d.Containers.Create(ctx, runtime.CreateRequest{Name: cp.Name, Config: cp.Request.Config, HostConfig: cp.Request.HostConfig, NetworkingConfig: cp.Request.NetworkingConfig})
	if err != nil {
		return "", fmt.Errorf("create %s: %w", cp.Name, err)
	}
	res.Actions = append(res.Actions, Action{Kind: "Container", Name: cp.Name, ID: resp.ID, Action: action})
	if err := dp.start(ctx, cp.Name, resp.ID, res); err != nil {
		return "", err
	}
	return resp.ID, nil
}

func (dp *Deployer) start(ctx context.Context, name, id string, res *UpResult) error {
	if err := dp.d.Containers.Start(ctx, id); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	res.Actions = append(res.Actions, Action{Kind: "Container", Name: name, ID: id, Action: "Started"})
	return nil
}

// removeContainer stops a replica the way compose does (its stop signal,
// then its grace period) and removes it.
func (dp *Deployer) removeContainer(ctx context.Context, c container.Summary, res *UpResult) error {
	if c.State == container.StateRunning || c.State == container.StateRestarting || c.State == container.StatePaused {
		if err := dp.d.Containers.Stop(ctx, c.ID, "", nil); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsNotModified(err) {
			return fmt.Errorf("stop %s: %w", containerSummaryName(c), err)
		}
	}
	if err := dp.d.Containers.Remove(ctx, c.ID, runtime.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if res != nil {
		res.Actions = append(res.Actions, Action{Kind: "Container", Name: containerSummaryName(c), ID: c.ID, Action: "Removed"})
	}
	return nil
}

func containerSummaryName(c container.Summary) string {
	if len(c.Names) == 0 {
		return c.ID
	}
	return c.Names[0][1:]
}
