package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakeStore is an image store of one image with two layers, and a
// sandbox table.
type fakeStore struct {
	ic       *registry.ImageContent
	layers   []string
	tagged   []string
	joined   map[string]string
	insecure string
}

func newFakeStore() *fakeStore {
	ls := []string{"layer zero", "layer one, longer"}
	ic := &registry.ImageContent{ID: digest.FromString("config"), Config: []byte(`{"architecture":"amd64"}`)}
	for _, l := range ls {
		ic.Layers = append(ic.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString(l), Size: int64(len(l))})
	}
	return &fakeStore{ic: ic, layers: ls, joined: map[string]string{}, insecure: "registry.local:5000"}
}

func (f *fakeStore) ImageContent(_ context.Context, ref string) (*registry.ImageContent, error) {
	if ref != "busybox" && ref != f.ic.ID.String() {
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return f.ic, nil
}

func (f *fakeStore) OpenLayer(_ context.Context, ic *registry.ImageContent, i int) (io.ReadCloser, error) {
	if ic != f.ic { // berthd's side passes its own record, not the wire's
		return nil, errors.New("not the store's record")
	}
	return io.NopCloser(strings.NewReader(f.layers[i])), nil
}

func (f *fakeStore) ImportOCILayout(_ context.Context, dir string) (string, error) {
	if dir == "" {
		return "", errdefs.ErrInvalidArgument.WithMessage("no layout")
	}
	return "sha256:imported-from-" + dir, nil
}

func (f *fakeStore) Tag(_ context.Context, ref, repo, tag string) error {
	if strings.Contains(tag, "@") {
		return errdefs.ErrInvalidArgument.WithMessage("invalid tag")
	}
	f.tagged = append(f.tagged, ref+" "+repo+":"+tag)
	return nil
}

func (f *fakeStore) IsInsecure(host string) bool { return host == f.insecure }

func (f *fakeStore) Join(_ context.Context, id, hostname string) (string, error) {
	if _, ok := f.joined[id]; ok {
		return "", errdefs.ErrConflict.WithMessage("sandbox " + id + " exists")
	}
	f.joined[id] = hostname
	return "/run/netns/" + id, nil
}

func (f *fakeStore) Leave(_ context.Context, id string) error {
	if _, ok := f.joined[id]; !ok {
		return errdefs.ErrNotFound.WithMessage("no sandbox " + id)
	}
	delete(f.joined, id)
	return nil
}

// pair connects a Client to HostHandler over a socket pair, as berthd
// and its helper are.
func pair(t *testing.T, images Images, network Sandboxes) *Client {
	a, b := net.Pipe()
	go ServeCallbacks(a, HostHandler(images, network))
	t.Cleanup(func() { a.Close(); b.Close() })
	c, err := NewClient(b)
	assert.NilError(t, err)
	return c
}

func TestCallbacksImages(t *testing.T) {
	f := newFakeStore()
	c := pair(t, f, f)
	ctx := context.Background()

	ic, err := c.ImageContent(ctx, "busybox")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ic.ID, f.ic.ID))
	assert.Check(t, is.DeepEqual(ic.Config, f.ic.Config))
	assert.Check(t, is.DeepEqual(ic.Layers, f.ic.Layers))

	// each layer, and each a second time: the stream is the layer's bytes
	for round := 0; round < 2; round++ {
		for i, want := range f.layers {
			rc, err := c.OpenLayer(ctx, ic, i)
			assert.NilError(t, err)
			got, err := io.ReadAll(rc)
			rc.Close()
			assert.NilError(t, err)
			assert.Check(t, is.Equal(string(got), want))
		}
	}
	_, err = c.OpenLayer(ctx, ic, 2)
	assert.Check(t, err != nil, "a layer the image does not have")
	gone := &registry.ImageContent{ID: digest.FromString("removed meanwhile")}
	_, err = c.OpenLayer(ctx, gone, 0)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	_, err = c.ImageContent(ctx, "nosuch")
	assert.Check(t, errdefs.IsNotFound(err), "the class crosses the wire: %v", err)
	assert.Check(t, is.ErrorContains(err, `image "nosuch"`))

	id, err := c.ImportOCILayout(ctx, "/tmp/layout")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id, "sha256:imported-from-/tmp/layout"))
	_, err = c.ImportOCILayout(ctx, "")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	assert.NilError(t, c.Tag(ctx, "sha256:x", "app", "v1"))
	err = c.Tag(ctx, "sha256:x", "app", "v1@sha256:y")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.DeepEqual(f.tagged, []string{"sha256:x app:v1"}))

	assert.Check(t, c.IsInsecure("registry.local:5000"))
	assert.Check(t, !c.IsInsecure("registry.example.com"))
}

func TestCallbacksSandboxes(t *testing.T) {
	f := newFakeStore()
	c := pair(t, f, f)
	ctx := context.Background()
	for round := 0; round < 3; round++ { // join, leave, and again
		path, err := c.Join(ctx, "buildkit-1", "step")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(path, "/run/netns/buildkit-1"))
		_, err = c.Join(ctx, "buildkit-1", "step")
		assert.Check(t, errdefs.IsConflict(err), "%v", err)
		assert.NilError(t, c.Leave(ctx, "buildkit-1"))
		assert.Check(t, errdefs.IsNotFound(c.Leave(ctx, "buildkit-1")))
	}

	hostOnly := pair(t, f, nil)
	_, err := hostOnly.Join(ctx, "buildkit-2", "step")
	assert.Check(t, is.ErrorContains(err, "no bridge network"))
}

// TestCallbacksConcurrent: the helper's steps call back at once over the
// one connection.
func TestCallbacksConcurrent(t *testing.T) {
	f := newFakeStore()
	c := pair(t, f, nil)
	errs := make(chan error, 32)
	for i := 0; i < cap(errs); i++ {
		go func(i int) {
			rc, err := c.OpenLayer(context.Background(), f.ic, i%2)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err == nil && string(got) != f.layers[i%2] {
				err = fmt.Errorf("layer %d: %q", i%2, got)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < cap(errs); i++ {
		assert.Check(t, <-errs)
	}
}

// TestCallbackCancel: a caller that gives up ends its call, and the
// connection serves the next one.
func TestCallbackCancel(t *testing.T) {
	block := make(chan struct{})
	f := &blockingStore{fakeStore: newFakeStore(), block: block, entered: make(chan struct{})}
	c := pair(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.ImportOCILayout(ctx, "slow"); done <- err }()
	<-f.entered
	cancel()
	assert.Check(t, errors.Is(<-done, context.Canceled))
	close(block)
	id, err := c.ImportOCILayout(context.Background(), "fast")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id, "sha256:imported-from-fast"))
}

type blockingStore struct {
	*fakeStore
	block   chan struct{}
	entered chan struct{}
}

func (b *blockingStore) ImportOCILayout(ctx context.Context, dir string) (string, error) {
	if dir == "slow" {
		close(b.entered)
		select {
		case <-b.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return b.fakeStore.ImportOCILayout(ctx, dir)
}
