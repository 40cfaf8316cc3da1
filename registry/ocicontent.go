package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/berthd/berth/registry/imagewire"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// ImageContent is a local image as OCI content, for a builder that reads
// images as blobs (BuildKit's FROM of a local image): its config exactly as
// stored (so its digest is the image ID) and its layers uncompressed, by
// their diff IDs.
type ImageContent struct {
	// ID is the config digest.
	ID     digest.Digest
	Config []byte
	// Layers are bottom first; Digest is the layer's uncompressed digest
	// (its diff ID), Size its uncompressed size.
	Layers []ocispec.Descriptor
	// layerIDs are the storage layers of Layers, in the same order.
	layerIDs []string
}

// ImageContent resolves ref as Image does and returns its config and
// layers. If there is no such image, ErrNotFound is returned.
func (s *Service) ImageContent(ctx context.Context, ref string) (*ImageContent, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	raw, err := s.configBlob(img)
	if err != nil {
		return nil, err
	}
	ic := &ImageContent{ID: digest.FromBytes(raw), Config: raw}
	for id := img.TopLayer; id != ""; {
		l, err := s.store.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", img.ID, id, err)
		}
		if l.UncompressedDigest == "" {
			return nil, fmt.Errorf("image %s: layer %s has no known digest: %w", img.ID, id, errdefs.ErrDataLoss)
		}
		ic.Layers = append([]ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize}}, ic.Layers...)
		ic.layerIDs = append([]string{id}, ic.layerIDs...)
		id = l.Parent
	}
	return ic, nil
}

// OpenLayer returns layer i of the image (as ImageContent lists them) as
// the uncompressed tar it was stored from: storage rebuilds it byte for
// byte, so it hashes to the layer's diff ID.
func (s *Service) OpenLayer(ctx context.Context, ic *ImageContent, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(ic.layerIDs) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image %s has no layer %d", ic.ID, i))
	}
	return s.store.Diff("", ic.layerIDs[i], &storage.DiffOptions{Compression: new(archive.Uncompressed)})
}

// ImportOCILayout copies the single image of the OCI image layout at dir
// (one manifest in its index.json) into storage, untagged, and returns its
// ID (the config digest). Layers storage already has are not stored again;
// dir is only read.
func (s *Service) ImportOCILayout(ctx context.Context, dir string) (string, error) {
	req := s.request(imagewire.OpImportLayout)
	req.Dir = dir
	res, err := s.transfer(ctx, req, nil)
	if err != nil {
		return "", err
	}
	if digest.Digest(res.ImageID).Validate() != nil {
		return "", fmt.Errorf("import OCI layout: the copy named no image (%q)", res.ImageID)
	}
	return res.ImageID, nil
}

// IsInsecure says whether host (host[:port]) is reached over plain HTTP or
// without TLS verification (--insecure-registry, and loopback).
func (s *Service) IsInsecure(host string) bool { return s.insecure.isInsecure(host) }
