package buildkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// localImages is berth's image store as BuildKit's image source sees a
// local image store: FROM an image that was loaded or built into berth
// resolves without a registry (buildx asks the docker driver for
// "prefer-local"). On a Get, the image's config and layers are copied into
// BuildKit's content store (once: content already there is only leased),
// with a manifest that BuildKit unpacks like a pulled one.
type localImages struct {
	images  Images
	content content.Store
	leases  leases.Manager
}

// blobLease is how long blobs copied for a build stay without a build
// holding them: long enough for the pull that follows the Get. The lease
// is temporary, so a restart removes it.
const blobLease = time.Hour

func (l *localImages) Get(ctx context.Context, name string) (images.Image, error) {
	ic, err := l.images.ImageContent(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return images.Image{}, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		return images.Image{}, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: ic.ID, Size: int64(len(ic.Config))},
		Layers:    append([]ocispec.Descriptor{}, ic.Layers...),
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return images.Image{}, err
	}
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	lease, err := l.leases.Create(ctx, leases.WithRandomID(), leases.WithExpiration(blobLease), leaseutil.MakeTemporary)
	if err != nil {
		return images.Image{}, err
	}
	lctx := leases.WithLease(ctx, lease.ID)
	put := func(desc ocispec.Descriptor, write func() error) error {
		if _, err := l.content.Info(lctx, desc.Digest); err == nil {
			return l.leases.AddResource(lctx, lease, leases.Resource{ID: desc.Digest.String(), Type: "content"})
		}
		return write()
	}
	writeBytes := func(desc ocispec.Descriptor, b []byte) error {
		return put(desc, func() error {
			return content.WriteBlob(lctx, l.content, "berth-"+desc.Digest.String(), bytes.NewReader(b), desc)
		})
	}
	if err := writeBytes(m.Config, ic.Config); err != nil {
		return images.Image{}, err
	}
	for i, desc := range ic.Layers {
		err := put(desc, func() error {
			rc, err := l.images.OpenLayer(ctx, ic, i)
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := content.WriteBlob(lctx, l.content, "berth-"+desc.Digest.String(), rc, desc); err != nil {
				return fmt.Errorf("copy layer %d of image %s to the build cache: %w", i+1, ic.ID, err)
			}
			return nil
		})
		if err != nil {
			return images.Image{}, err
		}
	}
	if err := writeBytes(target, raw); err != nil {
		return images.Image{}, err
	}
	return images.Image{Name: name, Target: target, CreatedAt: time.Now(), UpdatedAt: time.Now()}, nil
}

// List reports no images: none of berth's images holds BuildKit's cache
// records (they are copies), so a prune may take any of them.
func (l *localImages) List(ctx context.Context, filters ...string) ([]images.Image, error) {
	return nil, nil
}

func (l *localImages) Create(ctx context.Context, image images.Image) (images.Image, error) {
	return images.Image{}, errdefs.ErrNotImplemented.WithMessage("berth's image store is written by the moby exporter only")
}

func (l *localImages) Update(ctx context.Context, image images.Image, fieldpaths ...string) (images.Image, error) {
	return images.Image{}, errdefs.ErrNotImplemented.WithMessage("berth's image store is written by the moby exporter only")
}

func (l *localImages) Delete(ctx context.Context, name string, opts ...images.DeleteOpt) error {
	return errdefs.ErrNotImplemented.WithMessage("berth's image store is written by the moby exporter only")
}
