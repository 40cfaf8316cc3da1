package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	ociarchive "go.podman.io/image/v5/oci/archive"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// archiveFormat is what kind of image archive a tar is.
type archiveFormat int

const (
	notAnImage archiveFormat = iota
	dockerArchive
	ociArchive
)

// loadItem is one image of an archive: where to copy it from and the names
// it gets.
type loadItem struct {
	src   types.ImageReference
	names []reference.Named // tags; empty for an untagged image
}

// Load loads the images of a docker-archive (docker save) or OCI archive
// read from r; they keep the names recorded in the archive. Input that is
// not an image archive is ErrInvalidArgument and leaves nothing behind.
// start is called once the archive is known good; the "Loaded image: ..."
// lines (and, unless quiet, layer progress) go to its Output.
func (s *Service) Load(ctx context.Context, r io.Reader, quiet bool, start StartFunc) error {
	f, err := os.CreateTemp(s.tmpDir, "load-*.tar")
	if err != nil {
		return err
	}
	path := f.Name()
	defer os.Remove(path)
	lr := s.upload.Reader(r, "image archive")
	_, err = io.Copy(f, lr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err := lr.Err(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("read image archive: %w", err)
	}
	format, index, err := detectArchive(path)
	if err != nil {
		return err
	}
	sys := s.systemContext()
	var items []loadItem
	switch format {
	case dockerArchive:
		rd, err := dockerarchive.NewReader(sys, path)
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
		}
		defer rd.Close()
		if items, err = dockerItems(rd); err != nil {
			return err
		}
	case ociArchive:
		if items, err = ociItems(path, index); err != nil {
			return err
		}
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid image archive: found neither manifest.json (docker save) nor index.json and oci-layout (OCI image layout): not an image archive")
	}
	if len(items) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("invalid image archive: it contains no image")
	}
	out := start()
	for _, it := range items {
		id, err := s.loadOne(ctx, sys, it, out, quiet)
		if err != nil {
			return err
		}
		img, _ := s.store.Image(id)
		if len(it.names) == 0 {
			_ = out.Send(jsonstream.Message{Stream: "Loaded image ID: sha256:" + id + "\n"})
		}
		for _, n := range it.names {
			_ = out.Send(jsonstream.Message{Stream: "Loaded image: " + familiar(n) + "\n"})
		}
		if img != nil {
			s.publish(events.ActionLoad, "sha256:"+id, s.eventAttrs(img, "sha256:"+id))
		}
	}
	return nil
}

// loadOne copies one archive image into storage under its config digest
// and names, and returns its ID.
func (s *Service) loadOne(ctx context.Context, sys *types.SystemContext, it loadItem, out Output, quiet bool) (string, error) {
	src, err := it.src.NewImage(ctx, sys)
	if err != nil {
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
	}
	cfg := src.ConfigInfo().Digest
	src.Close()
	if cfg.Validate() != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage("invalid image archive: bad config digest")
	}
	id := cfg.Encoded()
	var first reference.Named
	if len(it.names) > 0 {
		first = it.names[0]
		paid, err := s.owe(id, namesOf(it.names))
		if err != nil {
			return "", err
		}
		defer paid()
	}
	if err := s.copyIn(ctx, sys, it.src, first, id, loadProgress, out, quiet); err != nil {
		return "", err
	}
	if len(it.names) > 1 {
		s.mu.Lock()
		err := s.store.AddNames(id, namesOf(it.names[1:]))
		s.mu.Unlock()
		if err != nil {
			return "", err
		}
	}
	if len(it.names) > 0 {
		s.touchTag(id)
	}
	return id, nil
}

// copyIn copies src into storage as image id (named, when named is set).
func (s *Service) copyIn(ctx context.Context, sys *types.SystemContext, src types.ImageReference, named reference.Named, id string, kind progressKind, out Output, quiet bool) error {
	var dest types.ImageReference
	var err error
	if named != nil {
		cn, cerr := toContainers(named)
		if cerr != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", cerr)
		}
		dest, err = istorage.Transport.NewStoreReference(s.store, cn, id)
	} else {
		dest, err = istorage.Transport.NewStoreReference(s.store, nil, id)
	}
	if err != nil {
		return err
	}
	pc, err := s.policyContext()
	if err != nil {
		return err
	}
	defer pc.Destroy()
	pump := startPump(kind, out, quiet)
	_, err = copy.Image(ctx, pc, dest, src, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		Progress:         pump.ch,
		ProgressInterval: progressInterval,
		ReportWriter:     io.Discard,
	})
	pump.stop()
	if err != nil {
		return err
	}
	return nil
}

func namesOf(ns []reference.Named) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	return out
}

func dockerItems(rd *dockerarchive.Reader) ([]loadItem, error) {
	groups, err := rd.List()
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
	}
	var items []loadItem
	for _, refs := range groups {
		it := loadItem{src: refs[0]}
		for _, r := range refs {
			if dr := r.DockerReference(); dr != nil {
				named, err := reference.ParseNormalizedNamed(dr.String())
				if err != nil {
					return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid docker image archive", err)
				}
				it.names = append(it.names, named)
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
func ociItems(path string, index []byte) ([]loadItem, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid OCI archive: index.json", err)
	}
	var items []loadItem
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
		src, err := ociarchive.NewReference(path, sel)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid OCI archive", err)
		}
		it := loadItem{src: src}
		if named != nil {
			it.names = []reference.Named{named}
		}
		items = append(items, it)
	}
	return items, nil
}

// detectArchive reads the tar's table of contents and says which kind of
// image archive it is; for OCI it returns index.json. A file that is not a
// tar is ErrInvalidArgument.
func detectArchive(path string) (archiveFormat, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return notAnImage, nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var hasManifest, hasLayout bool
	var index []byte
	n := 0
	for ; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n == 0 {
				return notAnImage, nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive: not a tar file", err)
			}
			return notAnImage, nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			hasManifest = true
		case "oci-layout":
			hasLayout = true
		case "index.json":
			if index, err = io.ReadAll(io.LimitReader(tr, 4<<20)); err != nil {
				return notAnImage, nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
			}
		}
	}
	switch {
	case n == 0:
		return notAnImage, nil, errdefs.ErrInvalidArgument.WithMessage("invalid image archive: empty file")
	case hasManifest:
		return dockerArchive, nil, nil
	case hasLayout && index != nil:
		return ociArchive, index, nil
	}
	return notAnImage, nil, nil
}
