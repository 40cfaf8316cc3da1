package registry

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	mstorage "github.com/moby/moby/api/types/storage"
	"go.podman.io/storage"
)

// ListOptions are the parameters of GET /images/json.
type ListOptions struct {
	All            bool // also intermediate images (untagged parents of others)
	ContainerCount bool // fill Summary.Containers (else -1)
	Manifests      bool // fill Summary.Manifests (manifests=1)
	Filters        filters.Args
}

var listFilterKeys = []string{"before", "dangling", "label", "reference", "since", "until"}

// entry is one image with what list filters and answers need.
type entry struct {
	img     *storage.Image
	info    *imageInfo
	created time.Time
	names   []reference.Named
}

// Images lists the images, newest first, as GET /images/json does.
// Invalid filters are ErrInvalidArgument.
func (s *Service) Images(ctx context.Context, opts ListOptions) ([]image.Summary, error) {
	f := opts.Filters
	if err := f.Validate(listFilterKeys...); err != nil {
		return nil, err
	}
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	sel, err := newSelector(s, f)
	if err != nil {
		return nil, err
	}
	kids, err := s.children()
	if err != nil {
		return nil, err
	}
	var users map[string]int
	if opts.ContainerCount {
		if users, err = s.imageUsers(); err != nil {
			return nil, err
		}
	}
	out := []image.Summary{}
	for _, e := range entries {
		tags, digests, ok, err := sel.match(e)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		// as dockerd: an untagged image that others were made from is an
		// intermediate image (shown with all=1); dangling means untagged
		// and without children
		if len(tags) == 0 && len(digests) == 0 && kids[e.img.ID] > 0 && (!opts.All || sel.isSet && sel.dangling) {
			continue
		}
		sum := image.Summary{
			ParentID:    e.info.meta.parent,
			ID:          "sha256:" + e.img.ID,
			RepoTags:    tags,
			RepoDigests: digests,
			Created:     e.created.Unix(),
			Size:        e.info.size,
			Labels:      e.info.spec.Config.Labels,
			Containers:  -1,
			SharedSize:  -1, // not computed, as dockerd without shared-size
		}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		if opts.ContainerCount {
			sum.Containers = int64(users[e.img.ID])
		}
		if opts.Manifests {
			sum.Manifests = s.manifestSummaries(e)
		}
		out = append(out, sum)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

func (s *Service) entries() ([]entry, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(imgs))
	for i := range imgs {
		img := &imgs[i]
		in, err := s.info(img)
		if err != nil {
			// An image half-deleted by a concurrent rmi is not worth failing the list.
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		if in.meta.scratch {
			continue // FROM scratch's base is no image of the user's
		}
		e := entry{img: img, info: in, created: created(img, in)}
		for _, n := range img.Names {
			if named, ok := storedName(n); ok {
				e.names = append(e.names, named)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// selector applies the list filters.
type selector struct {
	f               filters.Args
	dangling, isSet bool
	before, since   time.Time
	until           time.Time
}

func newSelector(s *Service, f filters.Args) (*selector, error) {
	sel := &selector{f: f}
	var err error
	if sel.dangling, sel.isSet, err = f.GetBool("dangling"); err != nil {
		return nil, err
	}
	for _, k := range []string{"before", "since"} {
		for _, ref := range f.Get(k) {
			img, err := s.lookup(ref)
			if err != nil {
				return nil, err
			}
			in, err := s.info(img)
			if err != nil {
				return nil, err
			}
			if k == "before" {
				sel.before = created(img, in)
			} else {
				sel.since = created(img, in)
			}
		}
	}
	for _, u := range f.Get("until") {
		if sel.until, err = ParseUntil(u, time.Now()); err != nil {
			return nil, err
		}
	}
	return sel, nil
}

// match reports whether e passes the filters, and its RepoTags and
// RepoDigests (restricted to the matching ones under a reference filter,
// as dockerd does).
func (sel *selector) match(e entry) (tags, digests []string, ok bool, err error) {
	tags, digests = []string{}, []string{}
	refFilter := sel.f.Get("reference")
	for _, n := range e.names {
		if len(refFilter) > 0 {
			found := false
			for _, p := range refFilter {
				if found, err = matchReference(p, n); err != nil {
					return nil, nil, false, err
				}
				if found {
					break
				}
			}
			if !found {
				continue
			}
		}
		switch n.(type) {
		case reference.Canonical:
			digests = append(digests, familiar(n))
		case reference.NamedTagged:
			tags = append(tags, familiar(n))
		}
	}
	if len(refFilter) > 0 && len(tags) == 0 && len(digests) == 0 {
		return nil, nil, false, nil
	}
	if sel.isSet && sel.dangling != (len(tags) == 0) {
		return nil, nil, false, nil
	}
	if !sel.f.MatchKVList("label", e.info.spec.Config.Labels) {
		return nil, nil, false, nil
	}
	if !sel.before.IsZero() && !e.created.Before(sel.before) {
		return nil, nil, false, nil
	}
	if !sel.since.IsZero() && !e.created.After(sel.since) {
		return nil, nil, false, nil
	}
	if !sel.until.IsZero() && e.created.After(sel.until) {
		return nil, nil, false, nil
	}
	return tags, digests, true, nil
}

// ParseUntil reads the `until` filter: a unix timestamp (with optional
// fraction), an RFC 3339 date, or a Go duration counted back from now.
func ParseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(v, ".")
	var secs, nanos int64
	if _, err := fmt.Sscanf(sec, "%d", &secs); err == nil && fmt.Sprint(secs) == strings.TrimLeft(sec, "+") {
		if frac != "" {
			frac = (frac + "000000000")[:9]
			if _, err := fmt.Sscanf(frac, "%d", &nanos); err != nil {
				return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timestamp %q", v))
			}
		}
		return time.Unix(secs, nanos), nil
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value as time or duration: %q", v))
}

// Inspect answers GET /images/{name}/json.
func (s *Service) Inspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	in, err := s.info(img)
	if err != nil {
		return nil, err
	}
	tags, digests := splitNames(img.Names)
	cfg := in.spec.Config
	layers := make([]string, 0, len(in.spec.RootFS.DiffIDs))
	for _, d := range in.spec.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	resp := &image.InspectResponse{
		ID:           "sha256:" + img.ID,
		RepoTags:     tags,
		RepoDigests:  digests,
		Comment:      in.comment,
		Created:      created(img, in).UTC().Format(time.RFC3339Nano),
		Author:       in.spec.Author,
		Config:       &cfg,
		Architecture: in.spec.Architecture,
		Variant:      in.spec.Variant,
		Os:           in.spec.OS,
		OsVersion:    in.spec.OSVersion,
		Size:         in.size,
		GraphDriver:  s.graphDriverData(img),
		RootFS:       image.RootFS{Type: in.spec.RootFS.Type, Layers: layers},
		Metadata:     image.Metadata{LastTagTime: s.lastTagTime(img)},
	}
	return resp, nil
}

func (s *Service) graphDriverData(img *storage.Image) *mstorage.DriverData {
	data := map[string]string{}
	if l, err := s.store.Layer(img.TopLayer); err == nil {
		dir := func(id string) string { return filepath.Join(s.store.GraphRoot(), s.store.GraphDriverName(), id) }
		data["UpperDir"] = dir(l.ID) + "/diff"
		data["WorkDir"] = dir(l.ID) + "/work"
		data["MergedDir"] = dir(l.ID) + "/merged"
		var lower []string
		for p := l.Parent; p != ""; {
			lower = append(lower, dir(p)+"/diff")
			pl, err := s.store.Layer(p)
			if err != nil {
				break
			}
			p = pl.Parent
		}
		if len(lower) > 0 {
			data["LowerDir"] = strings.Join(lower, ":")
		}
	}
	return &mstorage.DriverData{Name: s.store.GraphDriverName(), Data: data}
}

// History answers GET /images/{name}/history: newest step first; the top
// step carries the image ID and tags, the others "<missing>" as with any
// pulled image in Docker.
func (s *Service) History(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	in, err := s.info(img)
	if err != nil {
		return nil, err
	}
	hist := in.spec.History
	out := make([]image.HistoryResponseItem, 0, len(hist)+1)
	layer := 0
	for _, h := range hist {
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(in.layerSizes) {
			item.Size = in.layerSizes[layer]
			layer++
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		out = append(out, image.HistoryResponseItem{Created: created(img, in).Unix(), Size: in.size})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	s.historyIDs(out, img)
	return out, nil
}

// Parent is the ID of the image ref was committed from, as dockerd's image
// inspect shows it (Parent); "" for pulled, loaded and imported images, and
// when the parent is gone.
func (s *Service) Parent(ctx context.Context, ref string) (string, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return "", err
	}
	parent := s.parentOf(img)
	if parent == "" {
		return "", nil
	}
	if _, err := s.store.Image(strings.TrimPrefix(parent, "sha256:")); err != nil {
		return "", nil
	}
	return parent, nil
}
