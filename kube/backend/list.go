package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	corev1 "k8s.io/api/core/v1"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/runtime"
)

// Docker's `docker ps` filters; the backend serves the first five and
// refuses the others (501) rather than ignore them.
var (
	psFilters      = []string{"id", "name", "label", "label!", "status", "health"}
	psNotSupported = []string{"exited", "ancestor", "before", "since", "volume", "network", "publish", "expose", "is-task"}
)

// List answers `docker ps` from the pods berth owns.
func (b *Backend) List(ctx context.Context, opts runtime.ListOptions) ([]container.Summary, error) {
	f := opts.Filters
	if err := f.Validate(append(slices.Clone(psFilters), psNotSupported...)...); err != nil {
		return nil, err
	}
	for _, k := range psNotSupported {
		if f.Has(k) {
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("filter '%s' is not supported by the Kubernetes backend", k))
		}
	}
	if opts.Size {
		return nil, errdefs.ErrNotImplemented.WithMessage("container sizes (ps --size) are not available from the Kubernetes backend")
	}
	pods, err := b.ownedPods()
	if err != nil {
		return nil, err
	}
	// newest first, as Docker lists; ties by name so the order is stable
	slices.SortFunc(pods, func(x, y *corev1.Pod) int {
		if c := y.CreationTimestamp.Compare(x.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(name(x), name(y))
	})
	all := opts.All || opts.Limit > 0 || f.Has("status")
	now := b.now()
	out := []container.Summary{}
	ids := map[string]bool{}
	for _, p := range pods {
		ids[containerID(p)] = true
	}
	for _, p := range pods {
		s := summary(p, now)
		if !all && s.State != container.StateRunning && s.State != container.StateRestarting {
			continue
		}
		if !match(f, s) {
			continue
		}
		out = append(out, s)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return append(out, b.localSummaries(f, all, ids)...), nil
}

func match(f filters.Args, s container.Summary) bool {
	n := strings.TrimPrefix(s.Names[0], "/")
	if !f.FuzzyMatch("id", s.ID) || !f.Match("name", n) && !f.Match("name", s.Names[0]) {
		return false
	}
	if !f.MatchKVList("label", s.Labels) {
		return false
	}
	for _, v := range f.Get("label!") {
		k, want, hasValue := strings.Cut(v, "=")
		if got, ok := s.Labels[k]; ok && (!hasValue || got == want) {
			return false
		}
	}
	if !f.ExactMatch("status", string(s.State)) {
		return false
	}
	if f.Has("health") {
		h := "none"
		if s.Health != nil {
			h = string(s.Health.Status)
		}
		if !f.ExactMatch("health", h) {
			return false
		}
	}
	return true
}

// Inspect answers `docker inspect` for a pod berth owns.
func (b *Backend) Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	if size {
		return nil, errdefs.ErrNotImplemented.WithMessage("container sizes are not available from the Kubernetes backend")
	}
	p, err := b.lookup(ref)
	if err != nil {
		if _, l, ok := b.localFind(ref); ok {
			r := inspect(l.pod, b.now())
			if l.state == localStarting && hasProbe(l.pod) {
				// started, its pod not made yet: as a pending pod
				r.State.Health = &container.Health{Status: container.Starting}
			}
			return r, nil
		}
		return nil, err
	}
	return inspect(p, b.now()), nil
}

// lookup resolves a container reference to a pod: the full id, a unique id
// prefix, the Docker name (with or without its slash), compose's old
// <project>_<service>_<n>.
func (b *Backend) lookup(ref string) (*corev1.Pod, error) {
	pods, err := b.ownedPods()
	if err != nil {
		return nil, err
	}
	want := strings.TrimPrefix(ref, "/")
	var byPrefix []*corev1.Pod
	for _, p := range pods {
		id, n := containerID(p), name(p)
		if id == ref || n == want || legacyName(p) == want {
			return p, nil
		}
		if len(ref) >= 1 && strings.HasPrefix(id, ref) {
			byPrefix = append(byPrefix, p)
		}
	}
	switch len(byPrefix) {
	case 1:
		return byPrefix[0], nil
	case 0:
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple IDs found with provided prefix: %s", ref))
}

// legacyName is compose v1's <project>_<service>_<n>, which berth resolves
// too.
func legacyName(p *corev1.Pod) string {
	project, service, n := p.Labels[compose.LabelProject], p.Labels[compose.LabelService], p.Labels[podIndexLabel]
	if project == "" || service == "" || n == "" {
		return ""
	}
	return project + "_" + service + "_" + n
}
