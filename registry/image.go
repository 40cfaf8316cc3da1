package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/registry/imagefs"
	"github.com/berthd/berth/registry/imagewire"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// Image is a local image (imagefs.Image, declared there once for the
// image store's consumers).
type Image = imagefs.Image

// imageInfo is what berth reads once from an image's config and layers;
// images never change, so it is cached by ID.
type imageInfo struct {
	spec    dockerspec.DockerOCIImage
	comment string
	size    int64
	// layerSizes are the uncompressed sizes of the image's layers, bottom
	// first; layerIDs their storage ids, in the same order.
	layerSizes []int64
	layerIDs   []string
	meta       imageMeta
}

// Image resolves a reference ("busybox", "busybox:1", "name@sha256:..."),
// a full ID ("sha256:<hex>" or "<hex>") or a unique ID prefix to a local
// image. If there is none, ErrNotFound "No such image: <ref>" is returned.
func (s *Service) Image(ctx context.Context, ref string) (*Image, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	info, err := s.info(img)
	if err != nil {
		return nil, err
	}
	tags, digests := splitNames(img.Names)
	return &Image{
		ID:           "sha256:" + img.ID,
		RepoTags:     tags,
		RepoDigests:  digests,
		Config:       info.spec.Config,
		Created:      created(img, info),
		Architecture: info.spec.Architecture,
		Variant:      info.spec.Variant,
		OS:           info.spec.OS,
	}, nil
}

// CountImages is the number of images (for /info).
func (s *Service) CountImages(ctx context.Context) (int, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range imgs {
		if !s.meta(&imgs[i]).scratch { // never listed, so never counted
			n++
		}
	}
	return n, nil
}

func noSuchImage(ref string) error {
	return errdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

// lookup finds the storage image for ref, the way dockerd's GetImage does:
// a full ID, then a reference, then an ID prefix.
func (s *Service) lookup(ref string) (*storage.Image, error) {
	if ref == "" {
		return nil, noSuchImage(ref)
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, err
	}
	if m := fullIDRe.FindStringSubmatch(ref); m != nil {
		for i := range imgs {
			if imgs[i].ID == m[2] {
				return &imgs[i], nil
			}
		}
		return nil, noSuchImage(ref)
	}
	if named, err := reference.ParseDockerRef(ref); err == nil {
		want := named.String()
		for i := range imgs {
			for _, n := range imgs[i].Names {
				if n == want {
					return &imgs[i], nil
				}
			}
		}
	} else if !idPrefRe.MatchString(ref) {
		// Not a reference and not an ID: the client's input is malformed.
		return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
	}
	if m := idPrefRe.FindStringSubmatch(ref); m != nil {
		var found *storage.Image
		for i := range imgs {
			if strings.HasPrefix(imgs[i].ID, m[2]) {
				if found != nil {
					return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("No such image: %s (ambiguous ID prefix)", ref))
				}
				found = &imgs[i]
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, noSuchImage(ref)
}

// info reads (once) the config and layer sizes of img.
func (s *Service) info(img *storage.Image) (*imageInfo, error) {
	s.cacheMu.Lock()
	in, ok := s.cache[img.ID]
	s.cacheMu.Unlock()
	if ok {
		return in, nil
	}
	raw, err := s.configBlob(img)
	if err != nil {
		return nil, err
	}
	in = &imageInfo{}
	if err := json.Unmarshal(raw, &in.spec); err != nil {
		return nil, fmt.Errorf("image %s: decode config: %w", img.ID, err)
	}
	var extra struct {
		Comment string `json:"comment"`
	}
	_ = json.Unmarshal(raw, &extra)
	in.comment = extra.Comment
	in.meta = s.readMeta(img)
	// Walk the layer chain from the top; sizes are the uncompressed ones.
	for id := img.TopLayer; id != ""; {
		l, err := s.store.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", img.ID, id, err)
		}
		sz := l.UncompressedSize
		if sz < 0 {
			sz = 0
		}
		in.layerSizes = append([]int64{sz}, in.layerSizes...)
		in.layerIDs = append([]string{id}, in.layerIDs...)
		in.size += sz
		id = l.Parent
	}
	s.cacheMu.Lock()
	s.cache[img.ID] = in
	s.cacheMu.Unlock()
	return in, nil
}

// configBlob returns the image's config, stored by containers/image under
// the config digest (normally "sha256:"+ID).
func (s *Service) configBlob(img *storage.Image) ([]byte, error) {
	key := "sha256:" + img.ID
	b, err := s.store.ImageBigData(img.ID, key)
	if err == nil {
		return b, nil
	}
	for _, name := range img.BigDataNames {
		if strings.HasPrefix(name, "sha256:") {
			if b, err := s.store.ImageBigData(img.ID, name); err == nil {
				return b, nil
			}
		}
	}
	if errors.Is(err, storage.ErrImageUnknown) {
		return nil, noSuchImage(img.ID)
	}
	return nil, fmt.Errorf("image %s has no config: %w", img.ID, errdefs.ErrDataLoss)
}

func created(img *storage.Image, in *imageInfo) time.Time {
	if in.spec.Created != nil {
		return *in.spec.Created
	}
	return img.Created
}

// lastTagKey is the image data item where berth keeps Docker's
// Metadata.LastTagTime (set by tag, load and pull).
const lastTagKey = "berth.last-tag-time"

func (s *Service) touchTag(id string) {
	_ = s.store.SetImageBigData(id, lastTagKey, []byte(time.Now().UTC().Format(time.RFC3339Nano)), nil)
}

func (s *Service) lastTagTime(img *storage.Image) time.Time {
	if !slices.Contains(img.BigDataNames, lastTagKey) {
		return time.Time{}
	}
	b, err := s.store.ImageBigData(img.ID, lastTagKey)
	if err != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(b))
	return t
}

// ShortID is Docker's 12-character form of an ID or digest.
func ShortID(id string) string { return imagewire.ShortID(id) }
