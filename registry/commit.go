package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"time"

	"github.com/berthd/berth/registry/imagefs"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// CommitRequest is a docker commit (imagefs.CommitRequest).
type CommitRequest = imagefs.CommitRequest

// Commit makes a new image of the container's image plus what the container
// wrote (one more layer, none when it wrote nothing) and returns its ID.
// Unknown containers are ErrNotFound; nothing is left behind on failure.
func (s *Service) Commit(ctx context.Context, req CommitRequest) (string, error) {
	if req.Tag != "" && req.Repo == "" {
		return "", errdefs.ErrInvalidArgument.WithMessage("tag is specified without a repository")
	}
	var named reference.Named
	if req.Repo != "" {
		var err error
		if named, err = tagName(req.Repo, req.Tag); err != nil {
			return "", err
		}
	}
	c, err := s.store.Container(req.ContainerID)
	if err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) {
			return "", noSuchRootfs(req.ContainerID)
		}
		return "", err
	}
	base, err := s.store.Image(c.ImageID)
	if err != nil {
		return "", fmt.Errorf("image of %s: %w", ShortID(req.ContainerID), err)
	}
	in, err := s.info(base)
	if err != nil {
		return "", err
	}
	changes, err := s.store.Changes("", c.LayerID)
	if err != nil {
		return "", fmt.Errorf("changes of %s: %w", ShortID(req.ContainerID), err)
	}

	top, empty := base.TopLayer, len(changes) == 0
	if !empty {
		diff, err := s.spoolDiff(c.LayerID)
		if err != nil {
			return "", fmt.Errorf("diff of %s: %w", ShortID(req.ContainerID), err)
		}
		layer, _, err := s.store.PutLayer("", base.TopLayer, nil, "", false, nil, diff)
		diff.Close()
		if err != nil {
			return "", fmt.Errorf("commit %s: %w", ShortID(req.ContainerID), err)
		}
		top = layer.ID
	}
	ok := false
	defer func() {
		if !ok && !empty {
			_ = s.store.DeleteLayer(top)
		}
	}()

	config, err := s.commitConfig(in.spec, top, empty, req)
	if err != nil {
		return "", err
	}
	id, err := s.storeImage(config, top, imageMeta{parent: s.parentRef(base), cacheKey: req.CacheKey})
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", ShortID(req.ContainerID), err)
	}
	ok = true
	if named != nil {
		if err := s.tag(id, named); err != nil {
			return id, err
		}
	}
	return id, nil
}

// spoolDiff copies the layer's changes (a tar) to an unlinked temporary
// file: storage holds its layer lock while a diff is read, and PutLayer
// needs it.
func (s *Service) spoolDiff(layerID string) (*os.File, error) {
	f, err := os.CreateTemp(s.tmpDir, "commit-*.tar")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	diff, err := s.store.Diff("", layerID, &storage.DiffOptions{Compression: new(archive.Uncompressed)})
	if err == nil {
		_, err = io.Copy(f, diff)
		if cerr := diff.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// commitConfig returns the new image's config: the base image's, with the
// commit's run config, history entry and layers.
func (s *Service) commitConfig(baseSpec dockerspec.DockerOCIImage, top string, empty bool, req CommitRequest) ([]byte, error) {
	now := time.Now().UTC()
	spec := baseSpec
	spec.Created = &now
	spec.Author = req.Author
	spec.Config = req.Config
	spec.History = append(append([]ocispec.History(nil), baseSpec.History...), ocispec.History{
		Created: &now, CreatedBy: req.CreatedBy, Author: req.Author, Comment: req.Comment, EmptyLayer: empty,
	})
	layers, err := s.layerChain(top)
	if err != nil {
		return nil, err
	}
	spec.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	for _, l := range layers {
		spec.RootFS.DiffIDs = append(spec.RootFS.DiffIDs, l.Digest)
	}
	// Docker's image config also carries the comment, which OCI's has not.
	return json.Marshal(struct {
		dockerspec.DockerOCIImage
		Comment string `json:"comment,omitempty"`
	}{spec, req.Comment})
}

// layerChain describes the layers under top, bottom first, uncompressed and
// by the digests storage knows them by.
func (s *Service) layerChain(top string) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	for id := top; id != ""; {
		l, err := s.store.Layer(id)
		if err != nil {
			return nil, err
		}
		if l.UncompressedDigest == "" {
			return nil, fmt.Errorf("layer %s has no known digest: %w", id, errdefs.ErrDataLoss)
		}
		out = append([]ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize}}, out...)
		id = l.Parent
	}
	return out, nil
}

// storeImage records an image of the layers under top with config, and an
// OCI manifest for it (which push and save read), and returns its ID.
// An image that is already there (same config) is that image.
func (s *Service) storeImage(config []byte, top string, meta imageMeta) (string, error) {
	layers, err := s.layerChain(top)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(config)
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: int64(len(config))},
		Layers: append([]ocispec.Descriptor{}, layers...),
	})
	if err != nil {
		return "", err
	}
	mdigest := digest.FromBytes(manifest)
	_, err = s.store.CreateImage(id.Encoded(), nil, top, "", &storage.ImageOptions{
		Digest: mdigest,
		BigData: append([]storage.ImageBigDataOption{
			{Key: id.String(), Data: config, Digest: id},
			{Key: "manifest-" + mdigest.String(), Data: manifest, Digest: mdigest},
			{Key: storage.ImageDigestBigDataKey, Data: manifest, Digest: mdigest},
		}, meta.bigData()...),
	})
	if errors.Is(err, storage.ErrDuplicateID) {
		return id.String(), nil
	}
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// Scratch returns the ID of an image without layers, for FROM scratch,
// making it when it is not there. It has no name and stays: it is not
// listed, pruned or removed with its children, so concurrent builds can
// share it.
func (s *Service) Scratch(ctx context.Context) (string, error) {
	config, err := json.Marshal(dockerspec.DockerOCIImage{Image: ocispec.Image{
		Platform: ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}})
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(config)
	if _, err := s.store.Image(id.Encoded()); err == nil {
		return id.String(), nil
	}
	if _, err := s.storeImage(config, "", imageMeta{scratch: true}); err != nil {
		return "", err
	}
	return id.String(), nil
}
