package runtime

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/berthd/berth/runtime/imagecfg"
	"github.com/berthd/berth/runtime/oci"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// CommitOptions are POST /commit's parameters.
type CommitOptions struct {
	Repo, Tag       string
	Author, Comment string
	// Changes are Dockerfile instructions (CMD, ENV, ...) for the new
	// image's config.
	Changes []string
	// Config, when set, is the base of the new image's config instead of
	// the container's (which still fills in what it leaves unset).
	Config *container.Config
	// Pause freezes a running container while its files are read.
	Pause bool
}

// Commit makes an image of a container's root filesystem (docker commit)
// and returns its ID. The new image's config is the container's, changed by
// opts, as dockerd builds it.
func (s *Service) Commit(ctx context.Context, name string, opts CommitOptions) (string, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	rec := *c.rec // what the commit reads of the record, as it was
	ctrCfg, err := cloneConfig(rec.Config)
	paused := false
	if err == nil && opts.Pause && rec.State.Status == container.StateRunning {
		if perr := s.d.OCI.Pause(ctx, rec.ID); perr == nil {
			paused = true
		} else {
			logrus.WithError(perr).Warnf("commit %s: pause", rec.ID[:12])
		}
	}
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	if paused {
		defer func() {
			if err := s.d.OCI.Resume(context.WithoutCancel(ctx), rec.ID); err != nil {
				logrus.WithError(err).Errorf("commit %s: unpause", rec.ID[:12])
			}
		}()
	}

	cfg := opts.Config
	if cfg == nil {
		if cfg, err = cloneConfig(ctrCfg); err != nil {
			return "", err
		}
	}
	if err := imagecfg.Apply(cfg, opts.Changes); err != nil {
		return "", err
	}
	// what the changes leave unset comes from the container, by the rules
	// that merge an image's config into a container's at create
	ctrImg := imagecfg.ImageConfig(ctrCfg)
	oci.MergeImage(cfg, &ctrImg)
	id, err := s.d.Images.Commit(ctx, CommitRequest{
		ContainerID: rec.ID, Config: imagecfg.ImageConfig(cfg), Repo: opts.Repo, Tag: opts.Tag,
		Author: opts.Author, Comment: opts.Comment, CreatedBy: strings.Join(ctrCfg.Cmd, " "),
	})
	if err != nil {
		return "", err
	}
	ref := ""
	if named, err := reference.ParseNormalizedNamed(opts.Repo); err == nil {
		ref = reference.FamiliarName(named)
		if opts.Tag != "" {
			ref += ":" + opts.Tag
		}
	}
	s.event(&rec, events.ActionCommit, map[string]string{"comment": opts.Comment, "imageID": id, "imageRef": ref})
	return id, nil
}

// cloneConfig deep-copies a config, so a commit changes its own.
func cloneConfig(c *container.Config) (*container.Config, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out container.Config
	return &out, json.Unmarshal(b, &out)
}
