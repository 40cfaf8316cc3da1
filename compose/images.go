package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	str2duration "github.com/xhit/go-str2duration/v2"
)

// ImagePuller pulls images from their registries (the daemon's own
// credentials apply).
type ImagePuller interface {
	// PullImage pulls ref (name:tag or name@digest). ErrNotFound: no such
	// repository or tag; ErrUnavailable: the registry cannot be reached;
	// ErrUnauthorized: refused credentials.
	PullImage(ctx context.Context, ref string) error
}

// pull_policy values (compose-spec). compose-go's schema only checks them
// with an unanchored pattern and reads what it does not know as "missing",
// so a typo would silently mean something else: berth refuses it.
func parsePullPolicy(s types.ServiceConfig) (policy string, every time.Duration, err error) {
	switch p := s.PullPolicy; p {
	case "", types.PullPolicyMissing, types.PullPolicyIfNotPresent:
		return types.PullPolicyMissing, 0, nil
	case types.PullPolicyAlways, types.PullPolicyNever, types.PullPolicyBuild:
		return p, 0, nil
	case "daily":
		return types.PullPolicyRefresh, 24 * time.Hour, nil
	case "weekly":
		return types.PullPolicyRefresh, 7 * 24 * time.Hour, nil
	default:
		if d, ok := strings.CutPrefix(p, "every_"); ok {
			if every, err := str2duration.ParseDuration(d); err == nil && every > 0 {
				return types.PullPolicyRefresh, every, nil
			}
		}
		return "", 0, invalidf("service %q: invalid pull_policy %q: must be always, never, missing, if_not_present, build, daily, weekly or every_<duration>", s.Name, p)
	}
}

// mustPull is compose's rule: always pulls; never and build do not; missing
// pulls an image that is not here; a refresh policy also pulls one whose
// tag was last set longer ago than its period. local is nil when the image
// is not here.
func mustPull(policy string, every time.Duration, local *image.InspectResponse, now time.Time) bool {
	switch policy {
	case types.PullPolicyAlways:
		return true
	case types.PullPolicyNever, types.PullPolicyBuild:
		return false
	case types.PullPolicyRefresh:
		if local == nil {
			return true
		}
		if local.Metadata.LastTagTime.IsZero() {
			return false
		}
		return now.After(local.Metadata.LastTagTime.Add(every))
	}
	return local == nil
}

// resolvedImage is the image a service deploys with.
type resolvedImage struct {
	ImageChoice
	RepoDigest string
	Restored   bool  // from the pin: the reference was gone and could not be pulled
	pullErr    error // why the pull failed, when it did
}

// resolveImages decides each service's image the way compose's up does
// (pull by pull_policy), and, when an image is neither here nor pullable,
// falls back to the service's pin in old, if that image is still in the
// store. force pulls whatever the policy (never and build aside).
func (m *Manager) resolveImages(ctx context.Context, p *types.Project, old *DeploymentRecord, force bool) (map[string]resolvedImage, error) {
	out := map[string]resolvedImage{}
	pulled := map[string]error{} // by reference: pull each once
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		policy, every, err := parsePullPolicy(s)
		if err != nil {
			return nil, err
		}
		ref := imageRef(p.Name, s)
		local, err := m.inspectImage(ctx, ref)
		if err != nil {
			return nil, err
		}
		if mustPull(policy, every, local, m.d.Clock.Now()) || force && policy != types.PullPolicyNever && policy != types.PullPolicyBuild {
			perr, done := pulled[ref]
			if !done {
				perr = m.d.Puller.PullImage(ctx, ref)
				pulled[ref] = perr
			}
			if perr == nil {
				if local, err = m.inspectImage(ctx, ref); err != nil {
					return nil, err
				}
			} else if !errdefs.IsUnavailable(perr) && !errdefs.IsNotFound(perr) {
				return nil, fmt.Errorf("service %q: pull %s: %w", name, ref, perr)
			} else {
				local = nil // decided below: the pin, or the error
				out[name] = resolvedImage{pullErr: perr}
			}
		}
		if local != nil {
			out[name] = resolvedImage{ImageChoice: ImageChoice{ID: local.ID, Ref: ref}, RepoDigest: repoDigest(local, ref)}
			continue
		}
		ri, err := m.restoreFromPin(ctx, name, ref, old, out[name].pullErr)
		if err != nil {
			return nil, err
		}
		out[name] = ri
	}
	return out, nil
}

// restoreFromPin is a service's pinned image, when the reference no longer
// gives one: what keeps a deployment deployable with its registry down.
func (m *Manager) restoreFromPin(ctx context.Context, service, ref string, old *DeploymentRecord, pullErr error) (resolvedImage, error) {
	var pin *Pin
	if old != nil && old.Services[service] != nil && old.Services[service].Image == ref {
		pin = old.Services[service].Pin
	}
	if pin != nil {
		if choice, err := m.pinChoice(ctx, ref, pin); err == nil {
			return resolvedImage{ImageChoice: choice, RepoDigest: pin.RepoDigest, Restored: true}, nil
		}
	}
	msg := "No such image: " + ref
	if pullErr != nil {
		msg = fmt.Sprintf("image %s is not here and could not be pulled: %v", ref, pullErr)
	}
	if pin != nil {
		msg += fmt.Sprintf("; its pinned image %s is not in the store either", pinName(pin))
	}
	return resolvedImage{}, fmt.Errorf("service %q: %w", service, errdefs.ErrNotFound.WithMessage(msg))
}

// pinChoice is how to create a container from a pinned image that is in
// the store: by its reference while that still names it, else by the
// pin's digest, else by its ID. ErrNotFound when it is not in the store.
func (m *Manager) pinChoice(ctx context.Context, ref string, pin *Pin) (ImageChoice, error) {
	if img, err := m.inspectImage(ctx, ref); err == nil && img != nil && img.ID == pin.ImageID {
		return ImageChoice{ID: pin.ImageID, Ref: ref}, nil
	}
	if pin.RepoDigest != "" {
		if img, err := m.inspectImage(ctx, pin.RepoDigest); err == nil && img != nil && img.ID == pin.ImageID {
			return ImageChoice{ID: pin.ImageID, Ref: pin.RepoDigest}, nil
		}
	}
	if img, err := m.inspectImage(ctx, pin.ImageID); err == nil && img != nil {
		return ImageChoice{ID: pin.ImageID, Ref: pin.ImageID}, nil
	}
	return ImageChoice{}, errdefs.ErrNotFound.WithMessage("No such image: " + pinName(pin))
}

func pinName(pin *Pin) string {
	if pin.RepoDigest != "" {
		return pin.RepoDigest
	}
	return pin.ImageID
}

// inspectImage is nil, nil for an image that is not here.
func (m *Manager) inspectImage(ctx context.Context, ref string) (*image.InspectResponse, error) {
	img, err := m.d.Images.Inspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if errdefs.IsInvalidArgument(err) {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	return img, err
}

// repoDigest is the image's digest in the repository ref names, if it came
// from there ("" for a loaded or built image).
func repoDigest(img *image.InspectResponse, ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	want := reference.FamiliarName(named)
	for _, d := range img.RepoDigests {
		if name, _, ok := strings.Cut(d, "@"); ok && name == want {
			return d
		}
	}
	return ""
}

// pinOf is the pin of a resolved image.
func pinOf(ri resolvedImage, now time.Time) *Pin {
	return &Pin{ImageID: ri.ID, RepoDigest: ri.RepoDigest, Pinned: now}
}

// digestOf names an image for people: its digest when it has one.
func digestOf(pin *Pin) string {
	if pin == nil {
		return ""
	}
	return pin.RepoDigest
}
