package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry/imagewire"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
)

// archiveFormat is what kind of image archive a tar is.
type archiveFormat int

const (
	notAnImage archiveFormat = iota
	dockerArchive
	ociArchive
)

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
	req := s.request(imagewire.OpListArchive)
	switch format {
	case dockerArchive:
		req.Archive = imagewire.Archive{Format: imagewire.DockerArchive, Path: path}
	case ociArchive:
		req.Archive = imagewire.Archive{Format: imagewire.OCIArchive, Path: path, Index: index}
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid image archive: found neither manifest.json (docker save) nor index.json and oci-layout (OCI image layout): not an image archive")
	}
	// one copier (helper process) for the list and every image
	copier, err := s.d.Transfers.Begin(ctx)
	if err != nil {
		return err
	}
	defer copier.End()
	res, err := run(copier, req, nil)
	if err != nil {
		return err
	}
	items := res.Items
	if len(items) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("invalid image archive: it contains no image")
	}
	out := start()
	for _, it := range items {
		names, err := parseNames(it.Names)
		if err != nil {
			return err
		}
		id, err := s.loadOne(copier, it, names, out, quiet)
		if err != nil {
			return err
		}
		img, _ := s.store.Image(id)
		if len(names) == 0 {
			_ = out.Send(jsonstream.Message{Stream: "Loaded image ID: sha256:" + id + "\n"})
		}
		for _, n := range names {
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
func (s *Service) loadOne(copier imagewire.Copier, it imagewire.ArchiveImage, names []reference.Named, out Output, quiet bool) (string, error) {
	if it.Config.Validate() != nil { // the helper read a hostile archive: trust nothing
		return "", errdefs.ErrInvalidArgument.WithMessage("invalid image archive: bad config digest")
	}
	id := it.Config.Encoded()
	req := s.request(imagewire.OpLoad)
	req.Item, req.DestID, req.Quiet = it.Item, id, quiet
	if len(names) > 0 {
		req.DestName = names[0].String()
		paid, err := s.owe(id, namesOf(names))
		if err != nil {
			return "", err
		}
		defer paid()
	}
	if _, err := run(copier, req, out); err != nil {
		return "", err
	}
	if len(names) > 1 {
		s.mu.Lock()
		err := s.store.AddNames(id, namesOf(names[1:]))
		s.mu.Unlock()
		if err != nil {
			return "", err
		}
	}
	if len(names) > 0 {
		s.touchTag(id)
	}
	return id, nil
}

// parseNames parses the fully qualified names an archive gives an image.
func parseNames(ns []string) ([]reference.Named, error) {
	out := make([]reference.Named, 0, len(ns))
	for _, n := range ns {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid image archive", err)
		}
		out = append(out, named)
	}
	return out, nil
}

func namesOf(ns []reference.Named) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	return out
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
