package registry

import (
	"context"
	"io"
	"os"
	"sort"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"

	"github.com/berthd/berth/registry/imagewire"
)

// saveSet is what one save writes: image IDs in order, with their tags.
type saveSet struct {
	order []string
	tags  map[string][]reference.NamedTagged
}

func (ss *saveSet) add(id string, tag reference.NamedTagged) {
	if _, ok := ss.tags[id]; !ok {
		ss.order = append(ss.order, id)
		ss.tags[id] = nil
	}
	if tag != nil {
		for _, t := range ss.tags[id] {
			if t.String() == tag.String() {
				return
			}
		}
		ss.tags[id] = append(ss.tags[id], tag)
	}
}

// Save writes the named images as docker save does (a docker-archive that
// is an OCI image layout too, see writeLayout) to w, calling start first. As in dockerd, "busybox" (a name
// without tag) saves every tag of the repository, "busybox:1" that tag, and
// an ID the image without names. Unknown images are ErrNotFound, reported
// before anything is written.
func (s *Service) Save(ctx context.Context, names []string, start func() io.Writer) error {
	if len(names) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("no images to save")
	}
	set := &saveSet{tags: map[string][]reference.NamedTagged{}}
	for _, name := range names {
		if err := s.resolveSave(set, name); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(s.tmpDir, "save-*.tar")
	if err != nil {
		return err
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	if err := s.writeArchive(ctx, path, set); err != nil {
		return err
	}
	if _, err := readArchiveManifest(path); err != nil {
		return err
	}
	if err := writeLayout(start(), path); err != nil {
		return err
	}
	for _, id := range set.order {
		s.publish(events.ActionSave, "sha256:"+id, map[string]string{"name": "sha256:" + id})
	}
	return nil
}

func (s *Service) resolveSave(set *saveSet, name string) error {
	if named, err := reference.ParseNormalizedNamed(name); err == nil && reference.IsNameOnly(named) {
		imgs, err := s.store.Images()
		if err != nil {
			return err
		}
		found := false
		for _, img := range imgs {
			sorted := append([]string(nil), img.Names...)
			sort.Strings(sorted)
			for _, n := range sorted {
				if sn, ok := storedName(n); ok && sn.Name() == named.Name() {
					if t, ok := sn.(reference.NamedTagged); ok {
						set.add(img.ID, t)
						found = true
					}
				}
			}
		}
		if found {
			return nil
		}
	}
	img, err := s.lookup(name)
	if err != nil {
		return err
	}
	var tag reference.NamedTagged
	if !isIDRef(img, name) {
		if named, err := reference.ParseDockerRef(name); err == nil {
			tag, _ = named.(reference.NamedTagged)
		}
	}
	set.add(img.ID, tag)
	return nil
}

func (s *Service) writeArchive(ctx context.Context, path string, set *saveSet) error {
	req := s.request(imagewire.OpSave)
	req.Path = path
	for _, id := range set.order {
		im := imagewire.SaveImage{ID: id}
		for _, t := range set.tags[id] {
			im.Tags = append(im.Tags, t.String())
		}
		req.Images = append(req.Images, im)
	}
	_, err := s.transfer(ctx, req, nil)
	return err
}
