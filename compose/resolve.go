package compose

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
)

// Candidate is a container offered to Resolve: the runtime's.
type Candidate = runtime.Candidate

// Resolve is the name fallback the runtime calls after an exact container
// name and a full ID found nothing, and before Docker's unique-ID-prefix
// rule (runtime's lookup): compose's names must not lose to a random ID that
// happens to start with a hex-looking service name (db, be, cafe, a1). In
// order, first match wins:
//
//  1. <project>-<service>-<n>: replica n of a service, whatever the
//     container is called (container_name included);
//  2. <project>_<service>_<n>: the same, in compose v1's spelling;
//  3. <service>: the service's lowest-numbered replica (normally 1), when
//     exactly one deployment has that service running; when none runs it,
//     when exactly one deployment has it at all.
//
// One-off containers (`compose run`) take part in none of these: they are
// reached by their own names. Several matches at one step are an
// ErrInvalidArgument (400, as Docker answers an ambiguous ID prefix) that lists
// them, never a guess; no match is ErrNotFound ("No such container: <name>").
func Resolve(name string, candidates []Candidate) (string, error) {
	name = strings.TrimPrefix(name, "/")
	type replica struct {
		c Candidate
		k ContainerKey
	}
	var replicas []replica
	for _, c := range candidates {
		if k, ok := KeyOf(c.Labels); ok && !k.OneOff {
			replicas = append(replicas, replica{c, k})
		}
	}
	for _, form := range []func(project, service string, n int) string{DefaultContainerName, legacyContainerName} {
		var match []replica
		for _, r := range replicas {
			if r.k.Number > 0 && form(r.k.Project, r.k.Service, r.k.Number) == name {
				match = append(match, r)
			}
		}
		// Two containers with one number exist briefly while compose
		// recreates; the running one is the replica.
		if len(match) > 1 {
			if running := slices.DeleteFunc(slices.Clone(match), func(r replica) bool { return !r.c.Running }); len(running) > 0 {
				match = running
			}
		}
		switch len(match) {
		case 0:
			continue
		case 1:
			return match[0].c.ID, nil
		default:
			return "", ambiguous(name, func(yield func(Candidate, string) bool) {
				for _, r := range match {
					if !yield(r.c, r.k.Project) {
						return
					}
				}
			})
		}
	}

	// bare service name: pick per deployment the lowest-numbered replica,
	// preferring deployments where the service runs
	best := map[string]replica{} // by project, running replicas
	anyState := map[string]replica{}
	better := func(a, b replica) bool { // a before b
		return cmp.Or(cmp.Compare(a.k.Number, b.k.Number), cmp.Compare(a.c.ID, b.c.ID)) < 0
	}
	for _, r := range replicas {
		if r.k.Service != name {
			continue
		}
		if cur, ok := anyState[r.k.Project]; !ok || better(r, cur) {
			anyState[r.k.Project] = r
		}
		if !r.c.Running {
			continue
		}
		if cur, ok := best[r.k.Project]; !ok || better(r, cur) {
			best[r.k.Project] = r
		}
	}
	if len(best) == 0 {
		best = anyState
	}
	switch len(best) {
	case 0:
		return "", errdefs.ErrNotFound.WithMessage("No such container: " + name)
	case 1:
		for _, r := range best {
			return r.c.ID, nil
		}
	}
	projects := slices.Sorted(func(yield func(string) bool) {
		for p := range best {
			if !yield(p) {
				return
			}
		}
	})
	return "", ambiguous(name, func(yield func(Candidate, string) bool) {
		for _, p := range projects {
			if !yield(best[p].c, p) {
				return
			}
		}
	})
}

func ambiguous(name string, matches func(yield func(Candidate, string) bool)) error {
	var parts []string
	for c, project := range matches {
		parts = append(parts, fmt.Sprintf("%s (project %s)", c.Name, project))
	}
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ambiguous name %q: matches %s", name, strings.Join(parts, ", ")))
}

// NameResolver is the runtime's name fallback (runtime.Deps.Names).
type NameResolver struct{}

var _ runtime.NameFallback = NameResolver{}

// Resolve implements runtime.NameFallback with the package's Resolve.
func (NameResolver) Resolve(name string, candidates []Candidate) (string, error) {
	return Resolve(name, candidates)
}
