package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// CommitRequest is a docker commit: which container's root filesystem
// becomes a new image, with what run config and history entry.
type CommitRequest struct {
	ContainerID string
	// Config is the new image's run config, complete (the caller merged the
	// container's config and the --change instructions into it).
	Config dockerspec.DockerOCIImageConfig
	// Repo and Tag name the image; no Repo leaves it untagged.
	Repo, Tag string
	// Author, Comment and CreatedBy go into the image and its history.
	Author, Comment, CreatedBy string
}

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

	config, manifest, err := s.commitBlobs(in.spec, top, empty, req)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(config)
	mdigest := digest.FromBytes(manifest)
	_, err = s.store.CreateImage(id.Encoded(), nil, top, "", &storage.ImageOptions{
		Digest: mdigest,
		BigData: []storage.ImageBigDataOption{
			{Key: id.String(), Data: config, Digest: id},
			{Key: "manifest-" + mdigest.String(), Data: manifest, Digest: mdigest},
			{Key: storage.ImageDigestBigDataKey, Data: manifest, Digest: mdigest},
		},
	})
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", ShortID(req.ContainerID), err)
	}
	ok = true
	if named != nil {
		if err := s.tag(id.String(), named); err != nil {
			return id.String(), err
		}
	}
	return id.String(), nil
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

// commitBlobs returns the new image's config (the base image's, with the
// commit's run config, history entry and layer) and an OCI manifest that
// lists every layer uncompressed, by the digests storage knows them by.
func (s *Service) commitBlobs(baseSpec dockerspec.DockerOCIImage, top string, empty bool, req CommitRequest) (config, manifest []byte, err error) {
	now := time.Now().UTC()
	spec := baseSpec
	spec.Created = &now
	spec.Author = req.Author
	spec.Config = req.Config
	spec.RootFS.Type = "layers"
	spec.History = append(append([]ocispec.History(nil), baseSpec.History...), ocispec.History{
		Created: &now, CreatedBy: req.CreatedBy, Author: req.Author, Comment: req.Comment, EmptyLayer: empty,
	})
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	var diffIDs []digest.Digest
	for id := top; id != ""; {
		l, err := s.store.Layer(id)
		if err != nil {
			return nil, nil, err
		}
		if l.UncompressedDigest == "" {
			return nil, nil, fmt.Errorf("layer %s has no known digest: %w", id, errdefs.ErrDataLoss)
		}
		diffIDs = append([]digest.Digest{l.UncompressedDigest}, diffIDs...)
		m.Layers = append([]ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize}}, m.Layers...)
		id = l.Parent
	}
	spec.RootFS.DiffIDs = diffIDs
	// Docker's image config also carries the comment, which OCI's has not.
	withComment := struct {
		dockerspec.DockerOCIImage
		Comment string `json:"comment,omitempty"`
	}{spec, req.Comment}
	if config, err = json.Marshal(withComment); err != nil {
		return nil, nil, err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	if manifest, err = json.Marshal(m); err != nil {
		return nil, nil, err
	}
	return config, manifest, nil
}
