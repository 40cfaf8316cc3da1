package oci

import (
	"maps"
	"slices"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// MergeImageConfig fills a create request's config from its image's config
// exactly as dockerd does at create (daemon.merge and mergeAndVerifyConfig),
// so inspect shows what Docker's would:
//   - User, WorkingDir, StopSignal: the request's, else the image's.
//   - Env: the request's, then image variables whose name it does not set.
//     No PATH is added here; Generate adds the default at start, like Docker.
//   - Labels, ExposedPorts, Volumes: the union; the request wins on labels.
//   - Entrypoint and Cmd: an entrypoint in the request drops the image's Cmd
//     too; with none, the request's Cmd (else the image's) runs under the
//     image's entrypoint. An entrypoint of [""] ends up as none.
//   - Healthcheck: the image's, with each field the request sets overriding.
//
// It changes req in place and never aliases the image's slices or maps.
// No command at all is ErrInvalidArgument "no command specified".
// img may be nil (an image without config).
func MergeImageConfig(req *container.Config, img *dockerspec.DockerOCIImageConfig) error {
	if img != nil {
		MergeImage(req, img)
	}
	if len(req.Entrypoint) == 1 && req.Entrypoint[0] == "" {
		req.Entrypoint = nil
	}
	if len(req.Entrypoint) == 0 && len(req.Cmd) == 0 {
		return invalid("no command specified")
	}
	return nil
}

// MergeImage is dockerd's merge of an image config into a container config
// (MergeImageConfig's rules, without its checks); docker commit uses it too.
func MergeImage(req *container.Config, img *dockerspec.DockerOCIImageConfig) {
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
	if len(req.Env) == 0 {
		req.Env = slices.Clone(img.Env)
	} else {
		set := map[string]bool{}
		for _, e := range req.Env {
			k, _, _ := strings.Cut(e, "=")
			set[k] = true
		}
		for _, e := range img.Env {
			if k, _, _ := strings.Cut(e, "="); !set[k] {
				req.Env = append(req.Env, e)
			}
		}
	}
	if req.Labels == nil {
		req.Labels = map[string]string{}
	}
	for k, v := range img.Labels {
		if _, ok := req.Labels[k]; !ok {
			req.Labels[k] = v
		}
	}
	if len(req.Entrypoint) == 0 {
		if len(req.Cmd) == 0 {
			req.Cmd = slices.Clone(img.Cmd)
		}
		if req.Entrypoint == nil {
			req.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if ih := img.Healthcheck; ih != nil {
		if req.Healthcheck == nil {
			h := *ih
			h.Test = slices.Clone(ih.Test)
			req.Healthcheck = &h
		} else {
			h := req.Healthcheck
			if len(h.Test) == 0 {
				h.Test = slices.Clone(ih.Test)
			}
			if h.Interval == 0 {
				h.Interval = ih.Interval
			}
			if h.Timeout == 0 {
				h.Timeout = ih.Timeout
			}
			if h.StartPeriod == 0 {
				h.StartPeriod = ih.StartPeriod
			}
			if h.StartInterval == 0 {
				h.StartInterval = ih.StartInterval
			}
			if h.Retries == 0 {
				h.Retries = ih.Retries
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
		maps.Copy(req.Volumes, img.Volumes)
	}
	if req.StopSignal == "" {
		req.StopSignal = img.StopSignal
	}
}
