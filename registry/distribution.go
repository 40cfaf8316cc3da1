package registry

import (
	"context"
	"encoding/json"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	mregistry "github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
)

// DistributionInspect answers GET /distribution/{name}/json: the
// registry's descriptor of the manifest a reference points to and the
// platforms it offers, without pulling. Errors are classified like Pull's.
func (s *Service) DistributionInspect(ctx context.Context, ref string, auth *mregistry.AuthConfig) (*mregistry.DistributionInspect, error) {
	named, err := ParseNamed(ref)
	if err != nil {
		return nil, err
	}
	cnamed, err := toContainers(named)
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	sys, err := s.registryContext(reference.Domain(named), auth)
	if err != nil {
		return nil, err
	}
	srcRef, err := docker.NewReference(cnamed)
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	src, err := srcRef.NewImageSource(ctx, sys)
	if err != nil {
		return nil, s.pullError(err, named)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, s.pullError(err, named)
	}
	out := &mregistry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
		Platforms:  []ocispec.Platform{},
	}
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, err
		}
		for _, d := range list.Instances() {
			if inst, err := list.Instance(d); err == nil && inst.ReadOnly.Platform != nil {
				out.Platforms = append(out.Platforms, *inst.ReadOnly.Platform)
			}
		}
		return out, nil
	}
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return nil, err
	}
	cfg := m.ConfigInfo()
	if blob, _, err := src.GetBlob(ctx, cfg, none.NoCache); err == nil {
		var p ocispec.Platform
		if json.NewDecoder(blob).Decode(&p) == nil && p.OS != "" {
			out.Platforms = append(out.Platforms, p)
		}
		blob.Close()
	}
	return out, nil
}
