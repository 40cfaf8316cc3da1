package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	"go.podman.io/storage"
)

// Tag gives the image ref the name repo:tag (tag defaults to "latest"),
// taking the name from any other image that had it. Unknown images are
// ErrNotFound; malformed or digest names are ErrInvalidArgument.
func (s *Service) Tag(ctx context.Context, ref, repo, tag string) error {
	named, err := tagName(repo, tag)
	if err != nil {
		return err
	}
	return s.tag(ref, named)
}

// tagName is the name repo:tag (tag defaults to "latest") in full.
func tagName(repo, tag string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
	}
	if _, ok := named.(reference.Canonical); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("refusing to create a tag with a digest reference")
	}
	if reference.FamiliarName(named) == string(digest.Canonical) {
		return nil, errdefs.ErrInvalidArgument.WithMessage("refusing to create an ambiguous tag using digest algorithm as name")
	}
	if tag == "" {
		return reference.TagNameOnly(named), nil
	}
	if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid tag format")
	}
	return named, nil
}

func (s *Service) tag(ref string, named reference.Named) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if err := s.store.AddNames(img.ID, []string{named.String()}); err != nil {
		return err
	}
	s.touchTag(img.ID)
	s.publish(events.ActionTag, "sha256:"+img.ID, s.eventAttrs(img, familiar(named)))
	return nil
}

// eventAttrs are an image event's attributes: its name and its labels.
func (s *Service) eventAttrs(img *storage.Image, name string) map[string]string {
	attrs := map[string]string{}
	if in, err := s.info(img); err == nil {
		for k, v := range in.spec.Config.Labels {
			attrs[k] = v
		}
	}
	attrs["name"] = name
	return attrs
}

// user is a container (a storage container record) built on an image.
type user struct {
	id      string
	running bool // its root filesystem is mounted
}

func (s *Service) usersOf(imageID string) ([]user, error) {
	s.removals.wait() // a container gone from every list is no user
	cs, err := s.store.Containers()
	if err != nil {
		return nil, err
	}
	var out []user
	for _, c := range cs {
		if c.ImageID != imageID {
			continue
		}
		n, _ := s.store.Mounted(c.ID)
		out = append(out, user{id: c.ID, running: n > 0})
	}
	return out, nil
}

// imageUsers counts containers per image ID.
func (s *Service) imageUsers() (map[string]int, error) {
	s.removals.wait()
	cs, err := s.store.Containers()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, c := range cs {
		out[c.ImageID]++
	}
	return out, nil
}

// Delete removes a reference or an image, by dockerd's rules: removing one
// of several names only untags; an ID with names in several repositories
// needs force; a name or ID whose image a container uses is a conflict
// (ErrConflict, Docker's message) unless forced. A running container's
// image cannot be deleted even by force. Unknown images are ErrNotFound.
func (s *Service) Delete(ctx context.Context, ref string, force, prune bool) ([]image.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	users, err := s.usersOf(img.ID)
	if err != nil {
		return nil, err
	}
	kids, err := s.children()
	if err != nil {
		return nil, err
	}
	names := namedList(img.Names)
	records := []image.DeleteResponse{}
	d := deletion{kids: kids[img.ID], force: force, prune: prune}
	removedRef := false
	if !isIDRef(img, ref) {
		named, err := reference.ParseDockerRef(ref)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
		}
		if !force && isSingleReference(names) && len(users) > 0 {
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, ShortID(users[0].id), ShortID(img.ID)))
		}
		drop := []reference.Named{named}
		remaining := []reference.Named{}
		for _, n := range names {
			if n.String() != named.String() {
				remaining = append(remaining, n)
			}
		}
		// A tag removed with no other tag of its repository left takes the
		// repository's digest references with it.
		if _, canonical := named.(reference.Canonical); !canonical {
			tagLeft := false
			for _, n := range remaining {
				if _, c := n.(reference.Canonical); !c && n.Name() == named.Name() {
					tagLeft = true
				}
			}
			if !tagLeft {
				kept := remaining[:0:0]
				for _, n := range remaining {
					if _, c := n.(reference.Canonical); c && n.Name() == named.Name() {
						drop = append(drop, n)
					} else {
						kept = append(kept, n)
					}
				}
				remaining = kept
			}
		}
		if err := s.untag(img, drop, &records); err != nil {
			return records, err
		}
		if len(remaining) > 0 {
			return records, nil
		}
		names = nil
		removedRef = true
	} else if isSingleReference(names) {
		if c := conflict(img.ID, users, nil, d.kids, force); c != nil {
			return nil, c
		}
		if err := s.untag(img, names, &records); err != nil {
			return records, err
		}
		names = nil
	}
	d.quiet = removedRef
	return s.deleteImage(img, names, users, d, records)
}

// deletion is how deleteImage goes about an image.
type deletion struct {
	kids  int  // images made from it
	force bool // over stopped containers and other names
	quiet bool // the last name was just removed: a conflict keeps the image, no error
	prune bool // then remove its parents that nothing else holds
}

// deleteImage removes img's remaining names and the image itself, unless a
// conflict stops it, and with d.prune its untagged parents that no other
// image or container holds, as dockerd does.
func (s *Service) deleteImage(img *storage.Image, names []reference.Named, users []user, d deletion, records []image.DeleteResponse) ([]image.DeleteResponse, error) {
	if c := conflict(img.ID, users, names, d.kids, d.force); c != nil {
		if d.quiet {
			return records, nil
		}
		return nil, c
	}
	if len(users) > 0 {
		// Forced over stopped containers: the storage keeps the image for
		// them, so it is only untagged (dangling) until they are gone.
		return records, s.untag(img, names, &records)
	}
	if err := s.untag(img, names, &records); err != nil {
		return records, err
	}
	parent := s.parentOf(img)
	layers, err := s.store.DeleteImage(img.ID, true)
	if err != nil {
		if errors.Is(err, storage.ErrImageUsedByContainer) {
			return records, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by a container", ShortID(img.ID)))
		}
		return records, fmt.Errorf("delete image %s: %w", ShortID(img.ID), err)
	}
	s.forget(img.ID)
	s.publish(events.ActionDelete, "sha256:"+img.ID, map[string]string{"name": "sha256:" + img.ID})
	records = append(records, image.DeleteResponse{Deleted: "sha256:" + img.ID})
	for _, l := range layers {
		records = append(records, image.DeleteResponse{Deleted: "sha256:" + l})
	}
	if d.prune && parent != "" {
		return s.pruneParent(parent, records)
	}
	return records, nil
}

// pruneParent removes the parent of a removed image when it has no name,
// no other child and no container, and so on up, quietly stopping at the
// first image something holds.
func (s *Service) pruneParent(id string, records []image.DeleteResponse) ([]image.DeleteResponse, error) {
	img, err := s.lookup(id)
	if err != nil || len(img.Names) > 0 || s.meta(img).scratch {
		return records, nil
	}
	kids, err := s.children()
	if err != nil {
		return records, err
	}
	users, err := s.usersOf(img.ID)
	if err != nil || len(users) > 0 || kids[img.ID] > 0 {
		return records, err
	}
	return s.deleteImage(img, nil, nil, deletion{quiet: true, prune: true}, records)
}

// conflict is dockerd's checkImageDeleteConflict: children and running
// containers always, other names and stopped containers unless forced.
func conflict(id string, users []user, names []reference.Named, kids int, force bool) error {
	if kids > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", ShortID(id)))
	}
	for _, u := range users {
		if u.running {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", ShortID(id), ShortID(u.id)))
		}
	}
	if force {
		return nil
	}
	if len(names) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", ShortID(id)))
	}
	if len(users) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", ShortID(id), ShortID(users[0].id)))
	}
	return nil
}

func (s *Service) untag(img *storage.Image, names []reference.Named, records *[]image.DeleteResponse) error {
	if len(names) == 0 {
		return nil
	}
	strs := make([]string, len(names))
	for i, n := range names {
		strs[i] = n.String()
	}
	if err := s.store.RemoveNames(img.ID, strs); err != nil {
		return err
	}
	for _, n := range names {
		*records = append(*records, image.DeleteResponse{Untagged: familiar(n)})
		s.publish(events.ActionUnTag, "sha256:"+img.ID, map[string]string{"name": "sha256:" + img.ID})
	}
	return nil
}

func (s *Service) forget(id string) {
	s.cacheMu.Lock()
	delete(s.cache, id)
	s.cacheMu.Unlock()
}

func namedList(names []string) []reference.Named {
	out := []reference.Named{}
	for _, n := range names {
		if named, ok := storedName(n); ok {
			out = append(out, named)
		}
	}
	return out
}

// isIDRef reports whether ref found img by (a prefix of) its ID rather
// than by one of its names (lookup tries names before ID prefixes).
func isIDRef(img *storage.Image, ref string) bool {
	if fullIDRe.MatchString(ref) {
		return true
	}
	if named, err := reference.ParseDockerRef(ref); err == nil {
		for _, n := range img.Names {
			if n == named.String() {
				return false
			}
		}
	}
	return true
}

// isSingleReference is dockerd's: at most one tag, and all references in
// one repository.
func isSingleReference(refs []reference.Named) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	var single reference.Named
	canonical := map[string]bool{}
	for _, r := range refs {
		if _, ok := r.(reference.Canonical); ok {
			canonical[r.Name()] = true
		} else if single == nil {
			single = r
		} else {
			return false
		}
	}
	if single == nil {
		single = refs[0]
	}
	return len(canonical) == 1 && canonical[single.Name()]
}

var pruneFilterKeys = []string{"dangling", "label", "label!", "until"}

// Prune removes unused images: dangling ones (no tag), or with
// dangling=false every image no container uses, as POST /images/prune.
func (s *Service) Prune(ctx context.Context, f filters.Args) (*image.PruneReport, error) {
	if err := f.Validate(pruneFilterKeys...); err != nil {
		return nil, err
	}
	dangling, set, err := f.GetBool("dangling")
	if err != nil {
		return nil, err
	}
	danglingOnly := !set || dangling
	var until time.Time
	for _, u := range f.Get("until") {
		if until, err = ParseUntil(u, time.Now()); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	users, err := s.imageUsers()
	if err != nil {
		return nil, err
	}
	kids, err := s.children()
	if err != nil {
		return nil, err
	}
	rep := &image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	for _, e := range entries {
		tags, _ := splitNames(e.img.Names)
		if danglingOnly && len(tags) > 0 {
			continue
		}
		// parents go with their last child, as in dockerd
		if users[e.img.ID] > 0 || kids[e.img.ID] > 0 {
			continue
		}
		labels := e.info.spec.Config.Labels
		if !f.MatchKVList("label", labels) || matchAnyLabel(f.Get("label!"), labels) {
			continue
		}
		if !until.IsZero() && e.created.After(until) {
			continue
		}
		if _, err := s.store.Image(e.img.ID); err != nil {
			continue // gone with an earlier image's parents
		}
		recs, err := s.deleteImage(e.img, namedList(e.img.Names), nil, deletion{force: true, prune: true}, nil)
		rep.ImagesDeleted = append(rep.ImagesDeleted, recs...)
		if err != nil {
			if errdefs.IsConflict(err) {
				continue // a container appeared meanwhile
			}
			return rep, err
		}
		rep.SpaceReclaimed += uint64(e.info.size)
	}
	if len(rep.ImagesDeleted) > 0 {
		s.d.Events.Publish(events.Message{Type: events.ImageEventType, Action: events.ActionPrune,
			Actor: events.Actor{Attributes: map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)}}})
	}
	return rep, nil
}

func matchAnyLabel(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}
