package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"time"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/runtime/imagecfg"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions are docker import's: the new image's name, history comment
// and Dockerfile config changes (CMD, ENV, ...).
type ImportOptions struct {
	Repo, Tag string
	Message   string
	Changes   []string
}

// Import makes an image of one layer from a root filesystem tarball
// (possibly compressed) read from r, as docker import does, and sends its
// ID as the stream's status. Malformed names, changes or tarballs are
// ErrInvalidArgument, found before start is called; nothing is left behind.
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions, start StartFunc) error {
	var named reference.Named
	if opts.Repo != "" {
		var err error
		if named, err = tagName(opts.Repo, opts.Tag); err != nil {
			return err
		}
	}
	cfg := &container.Config{}
	if err := imagecfg.Apply(cfg, opts.Changes); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmpDir, "import-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	lr := s.upload.Reader(r, "tarball")
	if _, err := io.Copy(f, lr); err != nil {
		if lerr := lr.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("read the tarball: %w", err)
	}
	if err := checkTarball(f); err != nil {
		return err
	}
	// what the layer unpacks to counts too: a small compressed bomb is
	// stopped while it unpacks, and storage removes the partial layer
	dr, err := compression.DecompressStream(f)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid tarball", err)
	}
	defer dr.Close()
	unpacked := s.upload.Reader(dr, "tarball")
	layer, _, err := s.store.PutLayer("", "", nil, "", false, nil, unpacked)
	if err != nil {
		if lerr := unpacked.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("import: %w", err)
	}
	now := time.Now().UTC()
	config, err := json.Marshal(struct {
		dockerspec.DockerOCIImage
		Comment string `json:"comment,omitempty"`
	}{dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &now,
			Platform: ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.UncompressedDigest}},
			History:  []ocispec.History{{Created: &now, Comment: opts.Message}},
		},
		Config: imagecfg.ImageConfig(cfg),
	}, opts.Message})
	if err != nil {
		_ = s.store.DeleteLayer(layer.ID)
		return err
	}
	id, err := s.storeImage(config, layer.ID, imageMeta{})
	if err != nil {
		_ = s.store.DeleteLayer(layer.ID)
		return fmt.Errorf("import: %w", err)
	}
	attrs := map[string]string{}
	if named != nil {
		if err := s.tag(id, named); err != nil {
			return err
		}
		attrs["name"] = familiar(named)
	}
	s.publish(events.ActionImport, id, attrs)
	return start().Send(jsonstream.Message{Status: id})
}

// checkTarball refuses what is not a tar (after decompression) and rewinds f.
func checkTarball(f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r, err := compression.DecompressStream(f)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid tarball", err)
	}
	_, err = tar.NewReader(r).Next()
	r.Close()
	if err != nil && err != io.EOF {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid tarball", err)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}
