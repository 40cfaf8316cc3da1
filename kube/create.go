package kube

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	docker "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/berthd/berth/compose"
)

// CreateRequest is a POST /containers/create as compose v2 sends it, one
// per replica, with its com.docker.compose.* labels.
type CreateRequest struct {
	Name       string
	Config     *docker.Config
	HostConfig *docker.HostConfig
	Networking *network.NetworkingConfig
}

// Replica is what a compose container's create means to the cluster: the
// objects of its service (namespace, claims, Services, a StatefulSet with 0
// replicas: a created container does not run) and which replica it is.
type Replica struct {
	Project, Service string
	// Number is com.docker.compose.container-number: the pod ordinal.
	Number int
	// ConfigHash is compose's com.docker.compose.config-hash: a create of
	// another hash for an existing service is compose recreating it.
	ConfigHash string
	// Replaces is com.docker.compose.replace: the create is compose
	// recreating replica Number of a changed service (a temporary name,
	// then stop, rm of the old one and a rename). The label is not kept on
	// the objects: the service's template is the same as a plain create's.
	Replaces  string
	Manifests *Manifests
}

// TranslateCreate maps a compose v2 container create onto the deployment
// model: the request is read back into the compose service it came from
// and translated as `berth compose up` translates it, so that both paths
// make the same objects. Every field of the request is either mapped or
// refused (ErrNotImplemented, ErrInvalidArgument); none is dropped.
func TranslateCreate(req CreateRequest, o Options) (*Replica, error) {
	p, r, err := projectFromCreate(req)
	if err != nil {
		return nil, err
	}
	m, err := Translate(p, o)
	if err != nil {
		return nil, err
	}
	for _, ss := range m.StatefulSets {
		ss.Spec.Replicas = new(int32(0))
	}
	r.Manifests = m
	return r, nil
}

// projectFromCreate is the one-service project a compose create describes.
func projectFromCreate(req CreateRequest) (*types.Project, *Replica, error) {
	cfg, hc := req.Config, req.HostConfig
	if cfg == nil || cfg.Image == "" {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage("config: image is required")
	}
	if hc == nil {
		hc = &docker.HostConfig{}
	}
	l := cfg.Labels
	r := &Replica{Project: l[compose.LabelProject], Service: l[compose.LabelService], ConfigHash: l[compose.LabelConfigHash]}
	switch {
	case r.Service == "":
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("a compose container needs the label %s", compose.LabelService))
	case l[compose.LabelOneoff] == "True":
		return nil, nil, notImplemented("one-off compose containers (docker compose run)", "a service's replicas are its StatefulSet's pods")
	}
	n, err := strconv.Atoi(l[compose.LabelContainerNumber])
	if err != nil || n < 1 {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("label %s=%q: a compose container needs a number from 1", compose.LabelContainerNumber, l[compose.LabelContainerNumber]))
	}
	r.Number, r.Replaces = n, l[compose.LabelReplace]

	s := types.ServiceConfig{Name: r.Service, CustomLabels: maps.Clone(l)}
	delete(s.CustomLabels, compose.LabelContainerNumber) // the pod index, per replica
	delete(s.CustomLabels, compose.LabelReplace)         // this create's, not the service's
	if err := fromConfig(&s, cfg); err != nil {
		return nil, nil, err
	}
	if err := fromHostConfig(&s, hc); err != nil {
		return nil, nil, err
	}
	p := &types.Project{Name: r.Project, Services: types.Services{s.Name: s}, Volumes: types.Volumes{}}
	if err := fromMounts(p, &s, hc, n); err != nil {
		return nil, nil, err
	}
	if err := fromNetworking(&s, req, hc); err != nil {
		return nil, nil, err
	}
	if name := replicaName(req.Name, r); name != "" && name != r.Project+"-"+r.Service+"-"+strconv.Itoa(n) {
		s.ContainerName = name
	}
	if err := leftovers(cfg, hc); err != nil {
		return nil, nil, err
	}
	p.Services[s.Name] = s
	return p, r, nil
}

// replicaName is the Docker name the replica will have. A recreate's
// create has a temporary name (<id>_<project>-<service>-<n>) and names the
// one it replaces in com.docker.compose.replace: the service's
// container_name, else <service>-<n>.
func replicaName(reqName string, r *Replica) string {
	if r.Replaces == "" {
		return strings.TrimPrefix(reqName, "/")
	}
	if r.Replaces == r.Service+"-"+strconv.Itoa(r.Number) {
		return ""
	}
	return r.Replaces
}

func fromConfig(s *types.ServiceConfig, cfg *docker.Config) error {
	s.Image, s.Hostname, s.DomainName, s.User = cfg.Image, cfg.Hostname, cfg.Domainname, cfg.User
	s.Tty, s.StdinOpen, s.WorkingDir, s.StopSignal = cfg.Tty, cfg.OpenStdin, cfg.WorkingDir, cfg.StopSignal
	s.Entrypoint, s.Command = cfg.Entrypoint, cfg.Cmd
	if len(cfg.Env) > 0 {
		s.Environment = types.MappingWithEquals{}
		for _, e := range cfg.Env {
			k, v, ok := strings.Cut(e, "=")
			if ok {
				s.Environment[k] = &v
			} else {
				s.Environment[k] = nil
			}
		}
	}
	for p := range cfg.ExposedPorts {
		s.Expose = append(s.Expose, p.String())
	}
	slices.Sort(s.Expose)
	if h := cfg.Healthcheck; h != nil {
		hc := &types.HealthCheckConfig{Test: h.Test, Interval: dur(h.Interval), Timeout: dur(h.Timeout), StartPeriod: dur(h.StartPeriod), StartInterval: dur(h.StartInterval)}
		if h.Retries > 0 {
			hc.Retries = new(uint64(h.Retries))
		}
		s.HealthCheck = hc
	}
	if cfg.StopTimeout != nil {
		d := types.Duration(time.Duration(*cfg.StopTimeout) * time.Second)
		s.StopGracePeriod = &d
	}
	for _, v := range slices.Sorted(maps.Keys(cfg.Volumes)) {
		s.Volumes = append(s.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeVolume, Target: v})
	}
	return nil
}

func dur(d time.Duration) *types.Duration {
	if d == 0 {
		return nil
	}
	v := types.Duration(d)
	return &v
}

func fromHostConfig(s *types.ServiceConfig, hc *docker.HostConfig) error {
	s.CapAdd, s.CapDrop, s.ReadOnly, s.Privileged, s.Init = hc.CapAdd, hc.CapDrop, hc.ReadonlyRootfs, hc.Privileged, hc.Init
	s.DNSSearch, s.DNSOpts, s.GroupAdd, s.Sysctls = hc.DNSSearch, hc.DNSOptions, hc.GroupAdd, hc.Sysctls
	s.VolumesFrom, s.Links, s.Annotations = hc.VolumesFrom, hc.Links, hc.Annotations
	s.Ipc, s.Pid, s.Uts, s.Cgroup = string(hc.IpcMode), string(hc.PidMode), string(hc.UTSMode), string(hc.CgroupnsMode)
	s.UserNSMode, s.Runtime, s.Isolation, s.StorageOpt = string(hc.UsernsMode), hc.Runtime, string(hc.Isolation), hc.StorageOpt
	s.OomScoreAdj, s.ShmSize, s.SecurityOpt = int64(hc.OomScoreAdj), types.UnitBytes(hc.ShmSize), hc.SecurityOpt
	s.MemLimit, s.MemReservation, s.CPUS = types.UnitBytes(hc.Memory), types.UnitBytes(hc.MemoryReservation), float32(hc.NanoCPUs)/1e9
	s.CPUShares, s.CPUSet, s.CgroupParent, s.MemSwapLimit = hc.CPUShares, hc.CpusetCpus, hc.CgroupParent, types.UnitBytes(hc.MemorySwap)
	if hc.OomKillDisable != nil {
		s.OomKillDisable = *hc.OomKillDisable
	}
	if hc.PidsLimit != nil {
		s.PidsLimit = *hc.PidsLimit
	}
	for _, u := range hc.Ulimits {
		if s.Ulimits == nil {
			s.Ulimits = map[string]*types.UlimitsConfig{}
		}
		s.Ulimits[u.Name] = &types.UlimitsConfig{Soft: int(u.Soft), Hard: int(u.Hard)}
	}
	for _, d := range hc.Devices {
		s.Devices = append(s.Devices, types.DeviceMapping{Source: d.PathOnHost, Target: d.PathInContainer, Permissions: d.CgroupPermissions})
	}
	if len(hc.DeviceRequests) > 0 {
		s.Gpus = []types.DeviceRequest{{Driver: hc.DeviceRequests[0].Driver}}
	}
	for _, a := range hc.DNS {
		s.DNS = append(s.DNS, a.String())
	}
	if len(hc.ExtraHosts) > 0 {
		s.ExtraHosts = types.HostsList{}
		for _, h := range hc.ExtraHosts {
			host, ip, ok := strings.Cut(h, ":")
			if !ok {
				host, ip, _ = strings.Cut(h, "=")
			}
			s.ExtraHosts[host] = append(s.ExtraHosts[host], ip)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(hc.Tmpfs)) {
		if o := hc.Tmpfs[t]; o != "" {
			t += ":" + o
		}
		s.Tmpfs = append(s.Tmpfs, t)
	}
	switch rp := hc.RestartPolicy; rp.Name {
	case "", docker.RestartPolicyDisabled:
		s.Restart = "no"
	case docker.RestartPolicyOnFailure:
		s.Restart = "on-failure"
		if rp.MaximumRetryCount > 0 {
			s.Restart += ":" + strconv.Itoa(rp.MaximumRetryCount)
		}
	default:
		s.Restart = string(rp.Name)
	}
	ports := slices.Collect(maps.Keys(hc.PortBindings))
	slices.SortFunc(ports, func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, port := range ports {
		for _, b := range hc.PortBindings[port] {
			pc := types.ServicePortConfig{Target: uint32(port.Num()), Published: b.HostPort, Protocol: string(port.Proto()), Mode: "ingress"}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				pc.HostIP = b.HostIP.String()
			}
			s.Ports = append(s.Ports, pc)
		}
	}
	return nil
}

// fromMounts reads binds and mounts back into service volumes; a named
// volume's Docker name is <project>_<key> (or its `name:`), and its claim is
// named after the key, as `berth compose up` names it. A recreate's create
// mounts the old replica's anonymous volumes by name (compose inherits
// them): replica n's claim of the template for that target, which the
// StatefulSet keeps for the new pod, so it stays an anonymous volume.
func fromMounts(p *types.Project, s *types.ServiceConfig, hc *docker.HostConfig, n int) error {
	named := func(source string) string {
		key := strings.TrimPrefix(source, p.Name+"_")
		p.Volumes[key] = types.VolumeConfig{Name: source}
		return key
	}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: %q", b))
		}
		v := types.ServiceVolumeConfig{Type: types.VolumeTypeVolume, Source: parts[0], Target: parts[1]}
		if strings.HasPrefix(parts[0], "/") {
			v.Type = types.VolumeTypeBind
		} else {
			v.Source = named(parts[0])
		}
		if len(parts) == 3 {
			for o := range strings.SplitSeq(parts[2], ",") {
				switch o {
				case "ro":
					v.ReadOnly = true
				case "rw", "z", "Z", "nocopy":
				default:
					return notImplemented(fmt.Sprintf("volume %q: option %s", b, o), "not mapped")
				}
			}
		}
		s.Volumes = append(s.Volumes, v)
	}
	for _, m := range hc.Mounts {
		v := types.ServiceVolumeConfig{Type: string(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		switch m.Type {
		case mount.TypeVolume:
			if vo := m.VolumeOptions; vo != nil {
				if vo.DriverConfig != nil && (vo.DriverConfig.Name != "" && vo.DriverConfig.Name != "local" || len(vo.DriverConfig.Options) > 0) {
					return notImplemented("volume "+m.Source+": driver and driver options", "a claim's storage is its storage class's")
				}
				if vo.Subpath != "" {
					v.Volume = &types.ServiceVolumeVolume{Subpath: vo.Subpath}
				}
			}
			switch {
			case m.Source == anonymousClaim(m.Target, s.Name, n):
				v.Source = ""
			case m.Source != "":
				v.Source = named(m.Source)
			}
		case mount.TypeTmpfs:
			if to := m.TmpfsOptions; to != nil {
				v.Tmpfs = &types.ServiceVolumeTmpfs{Size: types.UnitBytes(to.SizeBytes)}
			}
		case mount.TypeBind:
		default:
			return notImplemented("mount type "+string(m.Type), "not mapped")
		}
		s.Volumes = append(s.Volumes, v)
	}
	return nil
}

// fromNetworking reads the project networks back: one flat network per
// namespace, so what is kept is the aliases beyond the ones compose gives
// every replica (its container name and service name) and the refusals of
// what a pod's network cannot take.
func fromNetworking(s *types.ServiceConfig, req CreateRequest, hc *docker.HostConfig) error {
	mode := string(hc.NetworkMode)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") || strings.HasPrefix(mode, "service:") {
		s.NetworkMode = mode
		return nil
	}
	if req.Config.NetworkDisabled {
		return notImplemented("network_mode disabled", "pods have their own network")
	}
	s.Networks = map[string]*types.ServiceNetworkConfig{}
	if req.Networking == nil {
		return nil
	}
	for name, ep := range req.Networking.EndpointsConfig {
		nc := &types.ServiceNetworkConfig{}
		if ep != nil {
			if ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address.IsValid() || ep.IPAMConfig.IPv6Address.IsValid() || len(ep.IPAMConfig.LinkLocalIPs) > 0) {
				return notImplemented("network "+name+": static addresses", "a pod's address is the cluster's")
			}
			if len(ep.MacAddress) > 0 {
				return notImplemented("network "+name+": mac_address", "static addresses are not mapped")
			}
			if len(ep.DriverOpts) > 0 {
				return notImplemented("network "+name+": driver_opts", "a pod's network is the cluster's")
			}
			s.Links = append(s.Links, ep.Links...)
			for _, a := range ep.Aliases {
				if a != s.Name && a != strings.TrimPrefix(req.Name, "/") && !strings.HasPrefix(a, s.CustomLabels[compose.LabelProject]+"-"+s.Name+"-") {
					nc.Aliases = append(nc.Aliases, a)
				}
			}
		}
		s.Networks[name] = nc
	}
	return nil
}

// consumed are the fields of a create that projectFromCreate reads (or
// ignores by design: attach flags and the console size are the client's,
// logging is the pods/log API's); leftovers refuses any other that is set.
var consumed = map[string]bool{
	"Hostname": true, "Domainname": true, "User": true, "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
	"ExposedPorts": true, "Tty": true, "OpenStdin": true, "StdinOnce": true, "Env": true, "Cmd": true, "Healthcheck": true,
	"Image": true, "Volumes": true, "WorkingDir": true, "Entrypoint": true, "NetworkDisabled": true, "Labels": true,
	"StopSignal": true, "StopTimeout": true,

	"Binds": true, "LogConfig": true, "NetworkMode": true, "PortBindings": true, "RestartPolicy": true, "VolumesFrom": true,
	"ConsoleSize": true, "Annotations": true, "CapAdd": true, "CapDrop": true, "CgroupnsMode": true, "DNS": true,
	"DNSOptions": true, "DNSSearch": true, "ExtraHosts": true, "GroupAdd": true, "IpcMode": true, "Links": true,
	"OomScoreAdj": true, "PidMode": true, "Privileged": true, "ReadonlyRootfs": true, "SecurityOpt": true,
	"StorageOpt": true, "Tmpfs": true, "UTSMode": true, "UsernsMode": true, "ShmSize": true, "Sysctls": true,
	"Runtime": true, "Isolation": true, "Mounts": true, "Init": true,
	"CPUShares": true, "Memory": true, "NanoCPUs": true, "CgroupParent": true, "CpusetCpus": true, "Devices": true,
	"DeviceRequests": true, "MemoryReservation": true, "MemorySwap": true, "OomKillDisable": true, "PidsLimit": true,
	"Ulimits": true,
}

// leftovers names the first field of the create that is set and that no
// mapping reads: a new Engine API field is refused until it is mapped.
func leftovers(cfg *docker.Config, hc *docker.HostConfig) error {
	for _, v := range []reflect.Value{reflect.ValueOf(*cfg), reflect.ValueOf(*hc)} {
		if name := firstSet(v); name != "" {
			return notImplemented("create option "+name, "not mapped")
		}
	}
	return nil
}

func firstSet(v reflect.Value) string {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if n := firstSet(v.Field(i)); n != "" {
				return n
			}
			continue
		}
		if !consumed[f.Name] && !v.Field(i).IsZero() {
			return f.Name
		}
	}
	return ""
}
