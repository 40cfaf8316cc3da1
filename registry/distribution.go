package registry

import (
	"context"

	"github.com/distribution/reference"
	mregistry "github.com/moby/moby/api/types/registry"

	"github.com/berthd/berth/registry/imagewire"
)

// DistributionInspect answers GET /distribution/{name}/json: the
// registry's descriptor of the manifest a reference points to and the
// platforms it offers, without pulling. Errors are classified like Pull's.
func (s *Service) DistributionInspect(ctx context.Context, ref string, auth *mregistry.AuthConfig) (*mregistry.DistributionInspect, error) {
	named, err := ParseNamed(ref)
	if err != nil {
		return nil, err
	}
	reg, err := s.registryOpts(reference.Domain(named), auth)
	if err != nil {
		return nil, err
	}
	req := s.request(imagewire.OpRemote)
	req.Registry, req.Ref, req.Familiar, req.Platforms = reg, named.String(), familiar(named), true
	res, err := s.transfer(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return &mregistry.DistributionInspect{Descriptor: res.Remote.Descriptor, Platforms: res.Remote.Platforms}, nil
}
