package main

import (
	"context"
	"slices"

	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
)

// imageRuntime lets the image service serve as runtime.Images.
type imageRuntime struct{ *registry.Service }

func (i imageRuntime) Commit(ctx context.Context, req runtime.CommitRequest) (string, error) {
	return i.Service.Commit(ctx, registry.CommitRequest{
		ContainerID: req.ContainerID, Config: req.Config, Repo: req.Repo, Tag: req.Tag,
		Author: req.Author, Comment: req.Comment, CreatedBy: req.CreatedBy,
	})
}

var _ runtime.Images = imageRuntime{}

func (i imageRuntime) Image(ctx context.Context, ref string) (*runtime.Image, error) {
	img, err := i.Service.Image(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &runtime.Image{
		ID: img.ID, RepoTags: img.RepoTags, Config: img.Config,
		OS: img.Os, Architecture: img.Architecture, Variant: img.Variant,
	}, nil
}

// Rootfses lists the container root filesystems in the image store.
func (i imageRuntime) Rootfses(ctx context.Context) ([]runtime.RootfsInfo, error) {
	rs, err := i.Service.Rootfses(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.RootfsInfo, len(rs))
	for n, r := range rs {
		out[n] = runtime.RootfsInfo{ContainerID: r.ContainerID, Mounted: r.Mounted}
	}
	return out, nil
}

// daemonSearch is the search domains policy plus the daemon's dns-search
// (dockerd's daemon-wide default), after the policy's own.
type daemonSearch struct {
	policy runtime.DNSSearch
	extra  []string
}

func (d daemonSearch) SearchDomains(labels map[string]string) []string {
	out := slices.Clone(d.policy.SearchDomains(labels))
	for _, s := range d.extra {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
