package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// Plan is what deploying a compose project means, in Engine API requests:
// the networks and volumes compose would create and every replica's create
// request, with compose's names and labels, so that the compose CLI sees the
// result as its own (`docker compose up -d` afterwards changes nothing).
type Plan struct {
	Project     string
	WorkingDir  string
	ConfigFiles []string
	Networks    []NetworkPlan // by compose key
	Volumes     []VolumePlan  // by compose key
	// Services come in dependency order: each after the services it depends
	// on (ties by name), which is the order to create and start them in.
	Services []ServicePlan
}

// NetworkPlan is one network of the project.
type NetworkPlan struct {
	Key      string // the key in the compose file ("default", "back")
	Name     string // the engine's name: <project>_<key> unless name: says otherwise
	External bool   // must exist already; never created or removed by the project
	Request  network.CreateRequest
}

// VolumePlan is one named volume of the project.
type VolumePlan struct {
	Key      string
	Name     string // <project>_<key> unless name: says otherwise
	External bool
	Request  volume.CreateRequest
}

// ServicePlan is one service and its replicas.
type ServicePlan struct {
	Name       string
	Image      string // as written (image:, or <project>-<service> for build:)
	ImageID    string // what Images resolved it to; the com.docker.compose.image label
	ConfigHash string
	DependsOn  []Dependency // by service name
	Containers []ContainerPlan
}

// Dependency is one depends_on entry.
type Dependency struct {
	Service   string
	Condition string // service_started, service_healthy, service_completed_successfully
	Required  bool
	Restart   bool
}

// ContainerPlan is one replica: its name and the body of POST /containers/create.
type ContainerPlan struct {
	Name    string
	Number  int
	Request container.CreateRequest
}

// Dependency conditions (compose-spec).
const (
	ConditionStarted   = types.ServiceConditionStarted
	ConditionHealthy   = types.ServiceConditionHealthy
	ConditionCompleted = types.ServiceConditionCompletedSuccessfully
)

// NewPlan plans a project loaded by Load. images maps each service's image
// reference (ImageRefs) to its local image ID: compose labels containers
// with it, and a missing one is an ErrNotFound ("No such image"), since
// berth deploys from local images (pull first). Features the native path does
// not do yet are ErrNotImplemented, naming the service and the field; a
// depends_on cycle is ErrInvalidArgument naming the cycle.
func NewPlan(p *types.Project, images map[string]string) (*Plan, error) {
	return NewPlanWith(p, PlanOptions{Images: images})
}

// ImageChoice is the image a service's containers are created from.
type ImageChoice struct {
	ID string // the image ID: the com.docker.compose.image label
	// Ref is what the create request names (Config.Image): the service's
	// reference, or, when that no longer names the image (a pin restored),
	// the pin's repo@digest or ID.
	Ref string
}

// PlanOptions are what a deployment decides beside the file.
type PlanOptions struct {
	// Images maps image references (ImageRefs) to local image IDs.
	Images map[string]string
	// ServiceImages overrides Images for some services.
	ServiceImages map[string]ImageChoice
	// Replicas overrides the file's scale of some services (the
	// deployment's desired counts; 0 for jobs).
	Replicas map[string]int
}

// NewPlanWith is NewPlan with the deployment's own choices.
func NewPlanWith(p *types.Project, opts PlanOptions) (*Plan, error) {
	order, err := dependencyOrder(p)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Project: p.Name, WorkingDir: p.WorkingDir, ConfigFiles: slices.Clone(p.ComposeFiles)}
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		np, err := planNetwork(p, key)
		if err != nil {
			return nil, err
		}
		plan.Networks = append(plan.Networks, np)
	}
	for _, key := range slices.Sorted(maps.Keys(p.Volumes)) {
		vp, err := planVolume(p, key)
		if err != nil {
			return nil, err
		}
		plan.Volumes = append(plan.Volumes, vp)
	}
	if err := p.CheckContainerNameUnicity(); err != nil {
		return nil, invalid(err)
	}
	for _, name := range order {
		sp, err := planService(p, p.Services[name], opts)
		if err != nil {
			return nil, err
		}
		plan.Services = append(plan.Services, sp)
	}
	return plan, nil
}

// ImageRefs are the image references NewPlan needs resolved, sorted.
func ImageRefs(p *types.Project) []string {
	refs := map[string]bool{}
	for _, s := range p.Services {
		refs[imageRef(p.Name, s)] = true
	}
	return slices.Sorted(maps.Keys(refs))
}

// imageRef is the image a service runs: image:, or for build: without
// image: the name compose gives what it builds.
func imageRef(project string, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return project + "-" + s.Name
}

func planNetwork(p *types.Project, key string) (NetworkPlan, error) {
	n := p.Networks[key]
	np := NetworkPlan{Key: key, Name: n.Name, External: bool(n.External)}
	if np.External {
		return np, nil
	}
	hash, err := NetworkHash(n)
	if err != nil {
		return NetworkPlan{}, err
	}
	labels := mergeLabels(n.Labels, map[string]string{
		LabelNetwork:    key,
		LabelProject:    p.Name,
		LabelVersion:    ComposeVersion,
		LabelConfigHash: hash,
	})
	np.Request = network.CreateRequest{
		Name:       n.Name,
		Driver:     n.Driver,
		Options:    n.DriverOpts,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		EnableIPv4: n.EnableIPv4,
		EnableIPv6: n.EnableIPv6,
		Labels:     labels,
	}
	if n.Ipam.Driver != "" || len(n.Ipam.Config) > 0 {
		ipam := &network.IPAM{Driver: n.Ipam.Driver}
		for _, c := range n.Ipam.Config {
			cfg, err := ipamConfig(c)
			if err != nil {
				return NetworkPlan{}, fmt.Errorf("network %s: %w", key, err)
			}
			ipam.Config = append(ipam.Config, cfg)
		}
		np.Request.IPAM = ipam
	}
	return np, nil
}

func planVolume(p *types.Project, key string) (VolumePlan, error) {
	v := p.Volumes[key]
	vp := VolumePlan{Key: key, Name: v.Name, External: bool(v.External)}
	if vp.External {
		return vp, nil
	}
	hash, err := VolumeHash(v)
	if err != nil {
		return VolumePlan{}, err
	}
	vp.Request = volume.CreateRequest{
		Name:       v.Name,
		Driver:     v.Driver,
		DriverOpts: v.DriverOpts,
		Labels: mergeLabels(v.Labels, map[string]string{
			LabelVolume:     key,
			LabelProject:    p.Name,
			LabelVersion:    ComposeVersion,
			LabelConfigHash: hash,
		}),
	}
	return vp, nil
}

func planService(p *types.Project, s types.ServiceConfig, opts PlanOptions) (ServicePlan, error) {
	if err := unsupported(s); err != nil {
		return ServicePlan{}, err
	}
	ref := imageRef(p.Name, s)
	choice, ok := opts.ServiceImages[s.Name]
	if !ok {
		choice.ID, ok = opts.Images[ref]
		choice.Ref = ref
	}
	if !ok {
		return ServicePlan{}, fmt.Errorf("service %q: %w", s.Name, errdefs.ErrNotFound.WithMessage("No such image: "+ref))
	}
	id := choice.ID
	s.CustomLabels = maps.Clone(s.CustomLabels)
	if s.CustomLabels == nil {
		s.CustomLabels = map[string]string{}
	}
	s.CustomLabels[LabelImage] = id
	hash, err := ServiceHash(s)
	if err != nil {
		return ServicePlan{}, err
	}
	sp := ServicePlan{Name: s.Name, Image: ref, ImageID: id, ConfigHash: hash}
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		d := s.DependsOn[dep]
		sp.DependsOn = append(sp.DependsOn, Dependency{Service: dep, Condition: cmp.Or(d.Condition, ConditionStarted), Required: d.Required, Restart: d.Restart})
	}
	scale := s.GetScale()
	if n, ok := opts.Replicas[s.Name]; ok {
		scale = n
	}
	if scale > 1 && s.ContainerName != "" {
		return ServicePlan{}, invalidf("service %q: container_name %q cannot be used with more than one replica", s.Name, s.ContainerName)
	}
	for n := 1; n <= scale; n++ {
		req, err := createRequest(p, s, n, hash)
		if err != nil {
			return ServicePlan{}, fmt.Errorf("service %q: %w", s.Name, err)
		}
		req.Config.Image = choice.Ref
		sp.Containers = append(sp.Containers, ContainerPlan{Name: containerName(p.Name, s, n), Number: n, Request: req})
	}
	return sp, nil
}

func containerName(project string, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return DefaultContainerName(project, s.Name, n)
}

// unsupported names what the native path cannot deploy yet. The compose CLI
// against berthd can; these need things the plan cannot express as create
// requests alone (copying content in, other containers' IDs, a builder).
func unsupported(s types.ServiceConfig) error {
	var what []string
	if s.Image == "" && s.Build != nil {
		what = append(what, "build (without image:)")
	}
	for _, mode := range []struct{ field, value string }{{"network_mode", s.NetworkMode}, {"ipc", s.Ipc}, {"pid", s.Pid}} {
		if strings.HasPrefix(mode.value, types.ServicePrefix) {
			what = append(what, mode.field+": "+mode.value)
		}
	}
	for _, v := range s.VolumesFrom {
		if !strings.HasPrefix(v, "container:") {
			what = append(what, "volumes_from: "+v)
		}
	}
	if len(s.Configs) > 0 {
		what = append(what, "configs")
	}
	if len(s.Secrets) > 0 {
		what = append(what, "secrets")
	}
	if s.UseAPISocket {
		what = append(what, "use_api_socket")
	}
	if s.Provider != nil {
		what = append(what, "provider")
	}
	if len(s.Models) > 0 {
		what = append(what, "models")
	}
	if s.BlkioConfig != nil {
		what = append(what, "blkio_config")
	}
	if len(s.Gpus) > 0 || (s.Deploy != nil && s.Deploy.Resources.Reservations != nil && len(s.Deploy.Resources.Reservations.Devices) > 0) {
		what = append(what, "gpus and device reservations")
	}
	if len(s.PostStart) > 0 || len(s.PreStop) > 0 {
		what = append(what, "post_start/pre_stop hooks")
	}
	if len(what) == 0 {
		return nil
	}
	return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("service %q: berth compose up does not do %s yet; use docker compose against berthd", s.Name, strings.Join(what, ", ")))
}

// dependencyOrder sorts services so that each comes after what it depends
// on; ties by name. A cycle is an error that names it.
func dependencyOrder(p *types.Project) ([]string, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order, path []string
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, name)
			return invalidf("dependency cycle detected: %s -> %s", strings.Join(path[i:], " -> "), name)
		}
		s, ok := p.Services[name]
		if !ok {
			return nil // a disabled or unselected dependency: compose-go checked it
		}
		state[name] = visiting
		path = append(path, name)
		for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
			if err := visit(dep); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func invalidf(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

// mergeLabels is user labels overlaid with compose's own.
func mergeLabels(user map[string]string, own map[string]string) map[string]string {
	out := maps.Clone(user)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, own)
	return out
}
