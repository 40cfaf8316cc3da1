package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	creference "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry/imagewire"
)

// copyImage runs one containers/image copy with its progress translated
// to out (none when quiet) and returns the manifest it wrote.
func copyImage(ctx context.Context, dest, src types.ImageReference, srcSys, destSys *types.SystemContext, kind progressKind, out func(jsonstream.Message), quiet bool, resolved *types.ImageReference) ([]byte, error) {
	pc, err := policyContext()
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	pump := startPump(kind, out, quiet)
	raw, err := copy.Image(ctx, pc, dest, src, &copy.Options{
		SourceCtx:               srcSys,
		DestinationCtx:          destSys,
		Progress:                pump.ch,
		ProgressInterval:        progressInterval,
		ReportWriter:            io.Discard,
		ReportResolvedReference: resolved,
	})
	pump.stop()
	if err != nil {
		return nil, err
	}
	if !quiet && out != nil {
		for _, m := range pump.t.finish() {
			out(m)
		}
	}
	return raw, nil
}

// storeRef is the store's reference for an image to be named name (a
// fully qualified reference; "" for none) with ID id ("": the store's
// choice).
func (l *Local) storeRef(name, id string) (types.ImageReference, error) {
	var cn creference.Named
	if name != "" {
		n, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		if cn, err = toContainers(n); err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
	}
	return istorage.Transport.NewStoreReference(l.store, cn, id)
}

// pull copies req.Ref into the store (as image req.DestID, when set, named
// req.DestName) and returns the image's ID.
func (l *Local) pull(ctx context.Context, req imagewire.Request, out func(jsonstream.Message)) (string, error) {
	n, src, err := dockerRef(req)
	if err != nil {
		return "", err
	}
	dest, err := l.storeRef(req.DestName, req.DestID)
	if err != nil {
		return "", err
	}
	var resolved types.ImageReference
	if _, err := copyImage(ctx, dest, src, systemContext(req), storeContext(req), pullProgress, out, false, &resolved); err != nil {
		return "", pullError(err, req, n)
	}
	if resolved == nil {
		return "", errors.New("pull: storage did not report the image")
	}
	_, img, err := istorage.ResolveReference(resolved)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// push copies the stored image req.SourceID to req.Ref and returns the
// manifest it pushed.
func (l *Local) push(ctx context.Context, req imagewire.Request, out func(jsonstream.Message)) (*imagewire.Result, error) {
	n, dest, err := dockerRef(req)
	if err != nil {
		return nil, err
	}
	src, err := istorage.Transport.NewStoreReference(l.store, nil, req.SourceID)
	if err != nil {
		return nil, err
	}
	raw, err := copyImage(ctx, dest, src, storeContext(req), systemContext(req), pushProgress, out, false, nil)
	if err != nil {
		return nil, pushError(err, req, n)
	}
	dgst, err := manifest.Digest(raw)
	if err != nil {
		return nil, err
	}
	return &imagewire.Result{ManifestDigest: dgst, ManifestSize: len(raw)}, nil
}

// itemRef is containers/image's reference to one image of an archive.
func itemRef(it imagewire.Item) (types.ImageReference, error) {
	switch it.Format {
	case imagewire.DockerArchive:
		return dockerarchive.NewIndexReference(it.Path, it.Index)
	case imagewire.OCIArchive:
		return ociarchive.NewReference(it.Path, it.RefName)
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("transfer: unknown archive format %q", it.Format))
}

// listArchive lists the images of an archive with their names and config
// digests (their IDs once loaded).
func (l *Local) listArchive(ctx context.Context, req imagewire.Request) ([]imagewire.ArchiveImage, error) {
	var items []imagewire.ArchiveImage
	var err error
	switch req.Archive.Format {
	case imagewire.DockerArchive:
		items, err = dockerItems(storeContext(req), req.Archive.Path)
	case imagewire.OCIArchive:
		items, err = ociItems(req.Archive.Path, req.Archive.Index)
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("transfer: unknown archive format %q", req.Archive.Format))
	}
	if err != nil {
		return nil, err
	}
	sys := storeContext(req)
	for i := range items {
		src, err := itemRef(items[i].Item)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
		}
		img, err := src.NewImage(ctx, sys)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
		}
		items[i].Config = img.ConfigInfo().Digest
		img.Close()
		if items[i].Config.Validate() != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid image archive: bad config digest")
		}
	}
	return items, nil
}

func dockerItems(sys *types.SystemContext, path string) ([]imagewire.ArchiveImage, error) {
	rd, err := dockerarchive.NewReader(sys, path)
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
	}
	defer rd.Close()
	groups, err := rd.List()
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
	}
	var items []imagewire.ArchiveImage
	for i, refs := range groups {
		it := imagewire.ArchiveImage{Item: imagewire.Item{Format: imagewire.DockerArchive, Path: path, Index: i}}
		for _, r := range refs {
			if dr := r.DockerReference(); dr != nil {
				n, err := reference.ParseNormalizedNamed(dr.String())
				if err != nil {
					return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
				}
				it.Names = append(it.Names, n.String())
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// ociItems lists the images of an OCI archive from its index. An image is
// named by its io.containerd.image.name annotation (what docker save
// writes), else by an org.opencontainers.image.ref.name that is a full
// reference ("busybox:latest"); a bare tag ("latest") names nothing.
func ociItems(path string, index []byte) ([]imagewire.ArchiveImage, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid OCI archive: index.json", err)
	}
	var items []imagewire.ArchiveImage
	for i, m := range idx.Manifests {
		refName := m.Annotations[ocispec.AnnotationRefName]
		var named reference.Named
		for _, cand := range []string{m.Annotations["io.containerd.image.name"], refName} {
			if cand == "" || !strings.ContainsAny(cand, ":/") {
				continue
			}
			if n, err := reference.ParseNormalizedNamed(cand); err == nil {
				named = reference.TagNameOnly(n)
				break
			}
		}
		sel := ""
		if len(idx.Manifests) > 1 {
			if refName == "" {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid OCI archive: manifest %d of %d has no %s annotation", i+1, len(idx.Manifests), ocispec.AnnotationRefName))
			}
			sel = refName
		}
		it := imagewire.ArchiveImage{Item: imagewire.Item{Format: imagewire.OCIArchive, Path: path, RefName: sel}}
		if named != nil {
			it.Names = []string{named.String()}
		}
		items = append(items, it)
	}
	return items, nil
}

// load copies one archive image into the store as image req.DestID, named
// req.DestName when set.
func (l *Local) load(ctx context.Context, req imagewire.Request, out func(jsonstream.Message)) error {
	src, err := itemRef(req.Item)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
	}
	dest, err := l.storeRef(req.DestName, req.DestID)
	if err != nil {
		return err
	}
	sys := storeContext(req)
	_, err = copyImage(ctx, dest, src, sys, sys, loadProgress, out, req.Quiet, nil)
	return err
}

// importLayout copies the single image of the OCI image layout req.Dir
// (one manifest in its index.json) into the store, untagged, and returns
// its ID (the config digest). Layers the store already has are not stored
// again; the layout is only read.
func (l *Local) importLayout(ctx context.Context, req imagewire.Request) (string, error) {
	src, err := layout.NewReference(req.Dir, "")
	if err != nil {
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "invalid OCI layout", err)
	}
	sys := storeContext(req)
	img, err := src.NewImage(ctx, sys)
	if err != nil {
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "invalid OCI layout", err)
	}
	cfg := img.ConfigInfo().Digest
	img.Close()
	if cfg.Validate() != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage("invalid OCI layout: bad config digest")
	}
	dest, err := l.storeRef("", cfg.Encoded())
	if err != nil {
		return "", err
	}
	if _, err := copyImage(ctx, dest, src, sys, sys, loadProgress, nil, true, nil); err != nil {
		return "", err
	}
	return cfg.String(), nil
}

// save writes req.Images into a docker-archive at req.Path, each with its
// tags.
func (l *Local) save(ctx context.Context, req imagewire.Request) error {
	sys := storeContext(req)
	w, err := dockerarchive.NewWriter(sys, req.Path)
	if err != nil {
		return err
	}
	for _, im := range req.Images {
		if err := l.saveOne(ctx, req, w, im); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

// saveOne writes one image: one copy, the writer records its other tags
// with it.
func (l *Local) saveOne(ctx context.Context, req imagewire.Request, w *dockerarchive.Writer, im imagewire.SaveImage) error {
	src, err := istorage.Transport.NewStoreReference(l.store, nil, im.ID)
	if err != nil {
		return err
	}
	var ctags []creference.NamedTagged
	for _, t := range im.Tags {
		n, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		cn, err := toContainers(n)
		if err != nil {
			return err
		}
		if ct, ok := cn.(creference.NamedTagged); ok {
			ctags = append(ctags, ct)
		}
	}
	var first creference.NamedTagged
	if len(ctags) > 0 {
		first = ctags[0]
	}
	dest, err := w.NewReference(first)
	if err != nil {
		return err
	}
	sys, dsys := storeContext(req), storeContext(req)
	if len(ctags) > 1 {
		dsys.DockerArchiveAdditionalTags = ctags[1:]
	}
	pc, err := policyContext()
	if err != nil {
		return err
	}
	defer pc.Destroy()
	if _, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: sys, DestinationCtx: dsys, ReportWriter: io.Discard}); err != nil {
		return fmt.Errorf("save %s: %w", imagewire.ShortID(im.ID), err)
	}
	return nil
}
