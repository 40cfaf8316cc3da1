package runtime

import (
	"maps"
	"strings"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeImageConfig fills a create request's Config from the image's config
// the way dockerd does at create time; the result is what inspect shows.
func mergeImageConfig(req *container.Config, img *dockerspec.DockerOCIImageConfig) {
	if req.User == "" {
		req.User = img.User
	}
	if len(img.ExposedPorts) > 0 {
		if req.ExposedPorts == nil {
			req.ExposedPorts = network.PortSet{}
		}
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				req.ExposedPorts[port] = struct{}{}
			}
		}
	}
	req.Env = mergeEnv(img.Env, req.Env)
	if len(img.Labels) > 0 {
		labels := maps.Clone(img.Labels)
		maps.Copy(labels, req.Labels)
		req.Labels = labels
	}
	if len(req.Entrypoint) == 0 {
		if len(req.Cmd) == 0 {
			req.Cmd = img.Cmd
		}
		if req.Entrypoint == nil {
			req.Entrypoint = img.Entrypoint
		}
	}
	if img.Healthcheck != nil {
		if req.Healthcheck == nil {
			hc := *img.Healthcheck
			req.Healthcheck = &hc
		} else {
			if len(req.Healthcheck.Test) == 0 {
				req.Healthcheck.Test = img.Healthcheck.Test
			}
			if req.Healthcheck.Interval == 0 {
				req.Healthcheck.Interval = img.Healthcheck.Interval
			}
			if req.Healthcheck.Timeout == 0 {
				req.Healthcheck.Timeout = img.Healthcheck.Timeout
			}
			if req.Healthcheck.StartPeriod == 0 {
				req.Healthcheck.StartPeriod = img.Healthcheck.StartPeriod
			}
			if req.Healthcheck.StartInterval == 0 {
				req.Healthcheck.StartInterval = img.Healthcheck.StartInterval
			}
			if req.Healthcheck.Retries == 0 {
				req.Healthcheck.Retries = img.Healthcheck.Retries
			}
		}
	}
	if req.WorkingDir == "" {
		req.WorkingDir = img.WorkingDir
	}
	if len(img.Volumes) > 0 {
		if req.Volumes == nil {
			req.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			req.Volumes[v] = struct{}{}
		}
	}
	if req.StopSignal == "" {
		req.StopSignal = img.StopSignal
	}
	if req.Labels == nil {
		req.Labels = map[string]string{}
	}
}

// mergeEnv overlays user entries on image entries by variable name.
func mergeEnv(image, user []string) []string {
	out := make([]string, 0, len(image)+len(user))
	index := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range user {
		add(kv)
	}
	return out
}

// entrypointAndArgs splits the merged command into Path and Args.
func entrypointAndArgs(cfg *container.Config) (string, []string, error) {
	cmd := append([]string{}, cfg.Entrypoint...)
	if len(cmd) == 1 && cmd[0] == "" {
		cmd = nil // --entrypoint "" clears the image's entrypoint
	}
	cmd = append(cmd, cfg.Cmd...)
	if len(cmd) == 0 {
		return "", nil, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	return cmd[0], cmd[1:], nil
}

// processEnv is the environment the container process gets: the merged
// Env, a PATH when there is none, HOSTNAME, and TERM for a TTY.
func processEnv(cfg *container.Config) []string {
	env := []string{}
	hasPath := false
	for _, kv := range cfg.Env {
		if strings.HasPrefix(kv, "PATH=") {
			hasPath = true
		}
	}
	if !hasPath {
		env = append(env, defaultPath)
	}
	env = append(env, "HOSTNAME="+cfg.Hostname)
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	return mergeEnv(env, cfg.Env)
}
