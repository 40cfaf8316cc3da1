package registry

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthd/berth/internal/testimage"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestImageContentRoundTrip reads a local image as OCI content (config by
// its digest, layers rebuilt byte for byte), writes it as an OCI layout,
// and imports that into another store: the same image ID, the same files.
func TestImageContentRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, _ := newTestService(t)
	id := loadImage(t, src, testimage.Options{Tag: "busybox:latest", Files: map[string]string{"/etc/marker": "round trip\n"}})

	ic, err := src.ImageContent(ctx, "docker.io/library/busybox:latest")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ic.ID.String(), id))
	assert.Check(t, is.Equal(digest.FromBytes(ic.Config), ic.ID))
	assert.Assert(t, len(ic.Layers) > 0)

	layout := t.TempDir()
	blobs := filepath.Join(layout, "blobs", "sha256")
	assert.NilError(t, os.MkdirAll(blobs, 0o755))
	for i, l := range ic.Layers {
		rc, err := src.OpenLayer(ctx, ic, i)
		assert.NilError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(digest.FromBytes(b), l.Digest), "layer %d hashes to its diff ID", i)
		assert.NilError(t, os.WriteFile(filepath.Join(blobs, l.Digest.Encoded()), b, 0o644))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(blobs, ic.ID.Encoded()), ic.Config, 0o644))
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: ic.ID, Size: int64(len(ic.Config))}, Layers: ic.Layers})
	md := digest.FromBytes(m)
	assert.NilError(t, os.WriteFile(filepath.Join(blobs, md.Encoded()), m, 0o644))
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m))}}})
	assert.NilError(t, os.WriteFile(filepath.Join(layout, "index.json"), idx, 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))

	dst, _ := newTestService(t)
	got, err := dst.ImportOCILayout(ctx, layout)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, id))
	again, err := dst.ImportOCILayout(ctx, layout)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again, id), "importing twice is the same image")
	img, err := dst.Image(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, is.Len(img.RepoTags, 0), "imported untagged")

	_, err = src.ImageContent(ctx, "nosuch:latest")
	assert.Check(t, errdefs.IsNotFound(err))
	_, err = src.OpenLayer(ctx, ic, len(ic.Layers))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = dst.ImportOCILayout(ctx, t.TempDir())
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, src.IsInsecure("127.0.0.1:5000") && !src.IsInsecure("registry.example.com"))
}
