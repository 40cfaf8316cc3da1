package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
)

// PullResult is the answer of POST /berth/compose/pull.
type PullResult struct {
	Project  string
	Services []ServicePull
}

// ServicePull is what pulling did for one service.
type ServicePull struct {
	Service string
	Image   string
	// Status is compose's word: Pulled, Skipped (pull_policy never or
	// build, or missing and here), or Pulled with an unchanged image.
	Status     string
	OldImageID string `json:",omitempty"` // the local image before the pull
	NewImageID string `json:",omitempty"`
	OldDigest  string `json:",omitempty"`
	NewDigest  string `json:",omitempty"`
	// Drift is set when the deployment runs another image than the one the
	// reference names now: `berth compose up` recreates the service.
	Drift bool `json:",omitempty"`
}

// Pull pulls a project's images as `docker compose pull` does: every
// service's, except pull_policy never and build, and an explicit missing
// when the image is here already. The record does not change:
// the next up deploys what moved, and the result and a drift event say
// which services that will recreate.
func (m *Manager) Pull(ctx context.Context, req UpRequest) (*PullResult, error) {
	src, err := m.source(ctx, req)
	if err != nil {
		return nil, err
	}
	p := src.project
	rec := m.existing(p.Name)
	res := &PullResult{Project: p.Name}
	pulled := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		policy, _, err := parsePullPolicy(s)
		if err != nil {
			return nil, err
		}
		ref := imageRef(p.Name, s)
		sp := ServicePull{Service: name, Image: ref, Status: "Skipped"}
		before, err := m.inspectImage(ctx, ref)
		if err != nil {
			return nil, err
		}
		if before != nil {
			sp.OldImageID, sp.OldDigest = before.ID, repoDigest(before, ref)
		}
		// as compose pull: an unset policy pulls, an explicit missing does not
		// when the image is here
		explicitMissing := s.PullPolicy == types.PullPolicyMissing || s.PullPolicy == types.PullPolicyIfNotPresent
		skip := policy == types.PullPolicyNever || policy == types.PullPolicyBuild || (explicitMissing && before != nil)
		if !skip {
			if !pulled[ref] {
				if err := m.d.Puller.PullImage(ctx, ref); err != nil {
					return res, fmt.Errorf("service %q: pull %s: %w", name, ref, err)
				}
				pulled[ref] = true
			}
			sp.Status = "Pulled"
		}
		if after, err := m.inspectImage(ctx, ref); err == nil && after != nil {
			sp.NewImageID, sp.NewDigest = after.ID, repoDigest(after, ref)
		}
		if sr := oldService(rec, name); sr != nil && sr.Job == nil && sr.Pin != nil && sp.NewImageID != "" && sr.Pin.ImageID != sp.NewImageID {
			sp.Drift = true
			if sp.OldImageID == "" || sp.OldImageID == sp.NewImageID {
				sp.OldImageID, sp.OldDigest = sr.Pin.ImageID, sr.Pin.RepoDigest
			}
			m.event(p.Name, ActionDrift, map[string]string{"service": name, "image": ref, "old": sr.Pin.ImageID, "new": sp.NewImageID, "oldDigest": sr.Pin.RepoDigest, "newDigest": sp.NewDigest})
		}
		res.Services = append(res.Services, sp)
	}
	return res, nil
}
