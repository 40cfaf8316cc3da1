package runtime

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/oci"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/sirupsen/logrus"
)

// CreateRequest is a parsed POST /containers/create.
type CreateRequest struct {
	Name             string
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	// DefaultNetworkOnly: API < 1.44 clients connect further networks after
	// create, so only the NetworkMode network is taken from EndpointsConfig.
	DefaultNetworkOnly bool
	// Platform (os[/arch[/variant]]) is the platform the image must be of;
	// "" takes the image as it is.
	Platform string
	// NoImageVolumes leaves the image's VOLUMEs unmounted: the classic
	// builder's COPY steps write into the layer, as dockerd's do.
	NoImageVolumes bool
	// DefaultReadOnlyNonRecursive: read-only binds of API < 1.44 clients
	// stay read-only at the top only, as before rro existed.
	DefaultReadOnlyNonRecursive bool
}

// Create makes a container: validates the request, merges the image config,
// prepares the root filesystem, volumes and network configuration, and
// persists the record. Nothing is left behind when it fails.
func (s *Service) Create(ctx context.Context, req CreateRequest) (_ container.CreateResponse, retErr error) {
	if s.isClosed() {
		return container.CreateResponse{}, errclass.Wrap(errdefs.ErrUnavailable, "", errClosed)
	}
	if err := s.restored(ctx); err != nil {
		return container.CreateResponse{}, err
	}
	if req.Config == nil {
		return container.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	cfg, hc := req.Config, req.HostConfig
	s.mergeLogConfig(hc)
	if _, err := validateHostConfig(hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateNetMode(cfg, hc); err != nil {
		return container.CreateResponse{}, err
	}
	warnings, err := oci.Validate(cfg, hc, nil)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if cfg.Image == "" {
		return container.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("No image was specified")
	}
	img, err := s.d.Images.Image(ctx, cfg.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if err := checkPlatform(req.Platform, img, cfg.Image); err != nil {
		return container.CreateResponse{}, err
	}
	if err := oci.MergeImageConfig(cfg, &img.Config); err != nil {
		return container.CreateResponse{}, err
	}
	if req.NoImageVolumes {
		cfg.Volumes = nil
	}
	if cfg.WorkingDir != "" {
		cfg.WorkingDir = filepath.Clean(cfg.WorkingDir) // as dockerd stores it: /tmp/ is /tmp
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	path, args, err := entrypointAndArgs(cfg)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateHealthcheck(cfg.Healthcheck); err != nil {
		return container.CreateResponse{}, err
	}

	id := newID()
	if cfg.Hostname == "" {
		if hc.NetworkMode.IsHost() {
			cfg.Hostname, _ = os.Hostname()
		} else {
			cfg.Hostname = id[:12]
		}
	}
	nets, err := s.wantedNetworks(ctx, hc, req.NetworkingConfig, req.DefaultNetworkOnly)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if err := s.adaptNamespaces(hc); err != nil {
		return container.CreateResponse{}, err
	}
	links, err := s.resolveLinks(hc)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if err := s.checkVolumesFrom(hc); err != nil {
		return container.CreateResponse{}, err
	}

	s.mu.Lock()
	name := req.Name
	if name == "" {
		name = s.generateName()
	}
	if err := s.reserveName(name, id); err != nil {
		s.mu.Unlock()
		return container.CreateResponse{}, err
	}
	name = "/" + strings.TrimPrefix(name, "/")
	s.mu.Unlock()
	defer func() {
		if retErr != nil {
			s.mu.Lock()
			delete(s.names, name)
			s.mu.Unlock()
		}
	}()

	rec := &Record{
		ID: id, Name: name, Created: time.Now().UTC(), Path: path, Args: args,
		Config: cfg, HostConfig: hc, Networks: nets, Image: img.ID, Links: links,
		State: State{Status: container.StateCreated},
	}
	if _, err := logInfo(rec); err != nil {
		return container.CreateResponse{}, err
	}
	if err := os.MkdirAll(s.containerDir(id), 0o710); err != nil {
		return container.CreateResponse{}, err
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(s.containerDir(id))
		}
	}()
	// a --rm container's layer is gone when it ends, and after a host crash
	// its record is removed at restore: it needs no sync (registry/rootfs.go)
	if err := s.d.Images.CreateRootfs(ctx, id, img.ID, RootfsOptions{Volatile: rec.HostConfig.AutoRemove}); err != nil {
		return container.CreateResponse{}, err
	}
	defer func() {
		if retErr != nil {
			if err := s.d.Images.RemoveRootfs(context.WithoutCancel(ctx), id); err != nil {
				logrus.WithError(err).Warnf("remove rootfs of failed create %s", id[:12])
			}
		}
	}()
	mounts, err := s.prepareMounts(ctx, rec, img, req.DefaultReadOnlyNonRecursive)
	if err != nil {
		return container.CreateResponse{}, err
	}
	rec.Mounts = mounts
	defer func() {
		if retErr != nil {
			s.releaseVolumes(context.WithoutCancel(ctx), rec, true)
		}
	}()

	c := newCtr(rec)
	c.mu.Lock()
	err = s.save(c)
	c.mu.Unlock()
	if err != nil {
		return container.CreateResponse{}, err
	}
	s.mu.Lock()
	s.byID[id] = c
	s.mu.Unlock()
	s.event(rec, events.ActionCreate, nil)
	if warnings == nil {
		warnings = []string{}
	}
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

// wantedNetworks decides the networks a new container joins.
func (s *Service) wantedNetworks(ctx context.Context, hc *container.HostConfig, nc *network.NetworkingConfig, defaultOnly bool) (map[string]*network.EndpointSettings, error) {
	mode := string(hc.NetworkMode)
	if mode == "" || mode == "default" {
		mode = "bridge"
		hc.NetworkMode = "bridge"
	}
	eps := map[string]*network.EndpointSettings{}
	if nc != nil {
		for name, ep := range nc.EndpointsConfig {
			if name == "default" {
				name = "bridge" // the CLI names the default network "default"
			}
			eps[name] = ep
		}
	}
	if defaultOnly && len(eps) > 1 {
		// clients older than API 1.44 connect further networks after
		// create; dockerd refuses several at once from them
		names := slices.Sorted(maps.Keys(eps))
		return nil, errdefs.ErrInvalidArgument.WithMessage("Container cannot be connected to network endpoints: " + strings.Join(names, ", "))
	}
	out := map[string]*network.EndpointSettings{}
	switch {
	case mode == "host" || mode == "none":
		out[mode] = &network.EndpointSettings{}
		return out, nil
	case strings.HasPrefix(mode, "container:"):
		other, err := s.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		hc.NetworkMode = container.NetworkMode("container:" + other.rec.ID)
		return out, nil
	}
	add := func(name string, ep *network.EndpointSettings) (string, error) {
		ref, err := s.d.Networks.Network(ctx, name)
		if err != nil {
			return "", err
		}
		if ep == nil {
			ep = &network.EndpointSettings{}
		} else {
			ep = ep.Copy()
		}
		ep.NetworkID = ref.ID
		out[ref.Name] = ep
		return ref.Name, nil
	}
	resolved, err := add(mode, findEndpoint(eps, mode))
	if err != nil {
		return nil, err
	}
	hc.NetworkMode = container.NetworkMode(resolved)
	if !defaultOnly {
		for name, ep := range eps {
			if name == mode {
				continue
			}
			if _, err := add(name, ep); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func findEndpoint(eps map[string]*network.EndpointSettings, name string) *network.EndpointSettings {
	if ep, ok := eps[name]; ok {
		return ep
	}
	return nil
}

func validateHostConfig(hc *container.HostConfig) ([]string, error) {
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name))
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != container.RestartPolicyDisabled {
		return nil, errdefs.ErrInvalidArgument.WithMessage("can't create 'AutoRemove' container with restart policy")
	}
	if hc.Memory < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid memory value: must be a positive number")
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Minimum memory limit allowed is 6MB")
	}
	if hc.MemorySwap > 0 && hc.Memory > 0 && hc.MemorySwap < hc.Memory {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if hc.NanoCPUs < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid value for NanoCpus: must be a positive number")
	}
	if hc.NanoCPUs > 0 && hc.CPUPeriod > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if hc.NanoCPUs > 0 && hc.CPUQuota > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if hc.ShmSize < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("SHM size can not be less than 0")
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file" // what inspect shows; docker-py reads it to decide to fetch logs
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	// dockerd checks some values only at start ("failed to initialize
	// logging driver"); a create that cannot start is refused here instead.
	if err := logdriver.Validate(hc.LogConfig.Type, hc.LogConfig.Config); err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if hc.LogConfig.Type == "journald" {
		if err := logdriver.JournaldEnabled(); err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
	}
	var warnings []string
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil
	}
	return warnings, nil
}

func validateHealthcheck(hc *container.HealthConfig) error {
	if hc == nil {
		return nil
	}
	if hc.Interval != 0 && hc.Interval < container.MinimumDuration {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Interval in Healthcheck cannot be less than %s", container.MinimumDuration))
	}
	if hc.Timeout != 0 && hc.Timeout < container.MinimumDuration {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Timeout in Healthcheck cannot be less than %s", container.MinimumDuration))
	}
	if hc.Retries < 0 {
		return errdefs.ErrInvalidArgument.WithMessage("Retries in Healthcheck cannot be negative")
	}
	if hc.StartPeriod != 0 && hc.StartPeriod < container.MinimumDuration {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("StartPeriod in Healthcheck cannot be less than %s", container.MinimumDuration))
	}
	return nil
}

// event publishes a container event with Docker's attributes: the
// container's labels, name and image, plus extra.
func (s *Service) event(rec *Record, action events.Action, extra map[string]string) {
	containerEvent(s.d.Events, rec, action, extra)
}

// containerEvent publishes a container event with the attributes dockerd
// gives it: the container's labels, name and image, and extra.
func containerEvent(pub Publisher, rec *Record, action events.Action, extra map[string]string) {
	attrs := make(map[string]string, len(rec.Config.Labels)+4)
	for k, v := range rec.Config.Labels {
		attrs[k] = v
	}
	attrs["name"] = strings.TrimPrefix(rec.Name, "/")
	attrs["image"] = rec.Config.Image
	for k, v := range extra {
		attrs[k] = v
	}
	pub.Publish(events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: rec.ID, Attributes: attrs}})
}

func brokenRecord(id string, err error) *Record {
	return &Record{
		ID: id, Name: "/broken-" + id[:min(12, len(id))], Config: &container.Config{Labels: map[string]string{}},
		HostConfig: &container.HostConfig{}, State: State{Status: container.StateDead, Error: "corrupt record: " + err.Error()},
		Broken: err.Error(),
	}
}

var _ = filepath.Join

// mergeLogConfig fills in the daemon's default logging, as dockerd does at
// create: a container that names no driver gets the daemon's, and one of
// the daemon's driver gets every default option it does not set itself
// (of another driver, only the dual-logging cache options).
func (s *Service) mergeLogConfig(hc *container.HostConfig) {
	def := s.d.LogDefaults()
	if def.Type == "" {
		def.Type = "json-file"
	}
	lc := &hc.LogConfig
	if lc.Type == "" {
		lc.Type = def.Type
	}
	if len(def.Config) == 0 {
		return
	}
	if lc.Config == nil {
		lc.Config = map[string]string{}
	}
	for k, v := range def.Config {
		if _, ok := lc.Config[k]; !ok && (lc.Type == def.Type || strings.HasPrefix(k, "cache-")) {
			lc.Config[k] = v
		}
	}
}
