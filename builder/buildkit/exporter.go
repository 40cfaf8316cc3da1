package buildkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/exporter"
	imageexporter "github.com/moby/buildkit/exporter/containerimage"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/compression"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/progress"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const mobyExporterName = "moby"

// mobyExporter writes a build's result as an image into berth's store: the
// image is committed in BuildKit's content store (layers uncompressed: they
// go straight into containers/storage, which keeps them uncompressed), then
// copied into storage through an OCI layout of hard links to those blobs,
// and tagged. Its ID is its config digest, as berth's images are.
type mobyExporter struct {
	writer     *imageexporter.ImageWriter
	images     Images
	leases     leases.Manager
	content    content.Store
	contentDir string // the local content store's directory (blobs/sha256/...)
	exportDir  string // where layouts are made, on the same filesystem
}

func (e *mobyExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	inst := &mobyInstance{e: e, id: id, attrs: attrs}
	rest, err := inst.opts.Load(ctx, attrs)
	if err != nil {
		return nil, err
	}
	if inst.names, err = parseNames(inst.opts.ImageName); err != nil {
		return nil, err
	}
	// the layers go into storage, which stores them uncompressed
	inst.opts.RefCfg.Compression = compression.New(compression.Uncompressed)
	inst.opts.SetOCITypesDefault(true)
	inst.meta = rest
	return inst, nil
}

// parseNames reads the exporter's name attribute: references separated by
// commas, each tagged (latest when it says no tag), none with a digest.
func parseNames(attr string) ([]reference.NamedTagged, error) {
	var out []reference.NamedTagged
	for _, n := range strings.Split(attr, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tag %q: %v", n, err))
		}
		if _, ok := named.(reference.Digested); ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tag %q: a tag cannot hold a digest", n))
		}
		out = append(out, reference.TagNameOnly(named).(reference.NamedTagged))
	}
	return out, nil
}

type mobyInstance struct {
	e     *mobyExporter
	id    int
	attrs map[string]string
	opts  imageexporter.ImageCommitOpts
	names []reference.NamedTagged
	meta  map[string]string
}

func (i *mobyInstance) ID() int                  { return i.id }
func (i *mobyInstance) Name() string             { return "exporting to image" }
func (i *mobyInstance) Type() string             { return mobyExporterName }
func (i *mobyInstance) Attrs() map[string]string { return i.attrs }
func (i *mobyInstance) Config() *exporter.Config {
	return exporter.NewConfigWithCompression(i.opts.RefCfg.Compression)
}

func (i *mobyInstance) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (_ map[string]string, _ exporter.FinalizeFunc, descref exporter.DescriptorReference, err error) {
	if len(src.Refs) > 1 {
		return nil, nil, nil, errdefs.ErrNotImplemented.WithMessage("berth's image store holds one platform per image: build one platform to load it, or use --output type=oci|docker,dest=...")
	}
	// attestations have no place in berth's store (as in dockerd's)
	src = src.Clone()
	src.Attestations = nil
	if src.Metadata == nil {
		src.Metadata = map[string][]byte{}
	}
	for k, v := range i.meta {
		src.Metadata[k] = []byte(v)
	}
	opts := i.opts
	ctx, done, err := leaseutil.WithLease(ctx, i.e.leases, leaseutil.MakeTemporary)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if descref == nil {
			_ = done(context.WithoutCancel(ctx))
		}
	}()
	desc, _, err := i.e.writer.Commit(ctx, src, info.SessionID, info.InlineCache, &opts, info.CompatibilityVersion, mobyExporterName)
	if err != nil {
		return nil, nil, nil, err
	}
	mdesc, manifest, err := i.e.imageManifest(ctx, *desc)
	if err != nil {
		return nil, nil, nil, err
	}
	writing := progress.OneOff(ctx, "writing image "+manifest.Config.Digest.String())
	id, err := i.e.store(ctx, mdesc, manifest)
	if err != nil {
		return nil, nil, nil, writing(err)
	}
	_ = writing(nil)
	var names []string
	for _, n := range i.names {
		naming := progress.OneOff(ctx, "naming to "+n.String())
		if err := i.e.images.Tag(ctx, id, reference.FamiliarName(n), n.Tag()); err != nil {
			return nil, nil, nil, naming(err)
		}
		_ = naming(nil)
		names = append(names, n.String())
	}
	// buildx reads the image ID from containerimage.digest when it asked
	// for prefer-image-digest: berth's image ID is the config digest
	resp := map[string]string{
		exptypes.ExporterImageConfigDigestKey: id,
		exptypes.ExporterImageDigestKey:       id,
	}
	if len(names) > 0 {
		resp["image.name"] = strings.Join(names, ",")
	}
	return resp, nil, imageexporter.NewDescriptorReference(*desc, done), nil
}

// imageManifest returns the image manifest desc is, or the one for this
// host's platform when desc is an index.
func (e *mobyExporter) imageManifest(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, *ocispec.Manifest, error) {
	raw, err := content.ReadBlob(ctx, e.content, desc)
	if err != nil {
		return desc, nil, err
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return desc, nil, err
		}
		match := platforms.Default()
		for _, m := range idx.Manifests {
			if m.Platform != nil && match.Match(*m.Platform) {
				return e.imageManifest(ctx, m)
			}
		}
		return desc, nil, errdefs.ErrNotImplemented.WithMessage("the build made no image for this host's platform, which berth's image store needs")
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return desc, nil, err
	}
	return desc, &m, nil
}

// store copies the image into berth's store through an OCI layout of hard
// links to the content store's blobs, and returns its ID.
func (e *mobyExporter) store(ctx context.Context, desc ocispec.Descriptor, m *ocispec.Manifest) (string, error) {
	// a rebuild with nothing changed makes the same config: the image is
	// there already
	if ic, err := e.images.ImageContent(ctx, m.Config.Digest.String()); err == nil && ic.ID == m.Config.Digest {
		return ic.ID.String(), nil
	}
	if err := os.MkdirAll(e.exportDir, 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(e.exportDir, "layout-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return "", err
	}
	for _, d := range append([]ocispec.Descriptor{desc, m.Config}, m.Layers...) {
		if err := e.linkBlob(ctx, d, filepath.Join(blobs, d.Digest.Encoded())); err != nil {
			return "", err
		}
	}
	desc.Annotations, desc.Platform = nil, nil
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), index, 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		return "", err
	}
	return e.images.ImportOCILayout(ctx, dir)
}

// linkBlob puts blob d at path: a hard link to the content store's file,
// or a copy when linking is impossible.
func (e *mobyExporter) linkBlob(ctx context.Context, d ocispec.Descriptor, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil // a blob named twice (an empty layer repeated)
	}
	if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("unexpected blob digest %q", d.Digest)
	}
	if err := os.Link(filepath.Join(e.contentDir, "blobs", "sha256", d.Digest.Encoded()), path); err == nil {
		return nil
	}
	ra, err := e.content.ReaderAt(ctx, d)
	if err != nil {
		return err
	}
	defer ra.Close()
	tmp := path + "." + identity.NewID()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, content.NewReader(ra))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy blob %s: %w", d.Digest, err)
	}
	return nil
}
