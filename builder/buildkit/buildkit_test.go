package buildkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/berthd/berth/registry"
	"github.com/containerd/containerd/v2/core/content"
	ctdmetadata "github.com/containerd/containerd/v2/core/metadata"
	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/errdefs"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakeImages is berth's image store with one image, "busybox", of the
// given layers; it counts the layers read.
type fakeImages struct {
	layers [][]byte
	config []byte
	opens  int
	// lie makes OpenLayer return other bytes than the layer's digest says
	lie bool
}

func (f *fakeImages) content() *registry.ImageContent {
	ic := &registry.ImageContent{ID: digest.FromBytes(f.config), Config: f.config}
	for _, l := range f.layers {
		ic.Layers = append(ic.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	return ic
}

func (f *fakeImages) ImageContent(ctx context.Context, ref string) (*registry.ImageContent, error) {
	if ref != "docker.io/library/busybox:latest" {
		return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return f.content(), nil
}

func (f *fakeImages) OpenLayer(ctx context.Context, ic *registry.ImageContent, i int) (io.ReadCloser, error) {
	f.opens++
	b := f.layers[i]
	if f.lie {
		b = append([]byte("x"), b[1:]...)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeImages) ImportOCILayout(ctx context.Context, dir string) (string, error) {
	return "", errors.New("not here")
}
func (f *fakeImages) Tag(ctx context.Context, ref, repo, tag string) error { return nil }
func (f *fakeImages) IsInsecure(host string) bool                          { return host == "insecure.test:5000" }

// newLocalImages builds the adapter over a real content store, metadata
// database and lease manager, as the worker has them.
func newLocalImages(t *testing.T, imgs Images) (*localImages, content.Store) {
	t.Helper()
	dir := t.TempDir()
	store, err := local.NewStore(filepath.Join(dir, "content"))
	assert.NilError(t, err)
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	assert.NilError(t, err)
	t.Cleanup(func() { db.Close() })
	mdb := ctdmetadata.NewDB(db, store, map[string]ctdsnapshot.Snapshotter{})
	assert.NilError(t, mdb.Init(context.Background()))
	cs := containerdsnapshot.NewContentStore(mdb.ContentStore(), "buildkit")
	lm := leaseutil.WithNamespace(ctdmetadata.NewLeaseManager(mdb), "buildkit")
	return &localImages{images: imgs, content: cs, leases: lm}, cs
}

func TestLocalImagesGet(t *testing.T) {
	ctx := context.Background()
	imgs := &fakeImages{layers: [][]byte{[]byte("layer one"), []byte("layer two")}, config: []byte(`{"architecture":"amd64","os":"linux"}`)}
	li, cs := newLocalImages(t, imgs)

	img, err := li.Get(ctx, "docker.io/library/busybox:latest")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(img.Name, "docker.io/library/busybox:latest"))
	assert.Check(t, is.Equal(img.Target.MediaType, ocispec.MediaTypeImageManifest))
	assert.Check(t, is.Equal(imgs.opens, 2))

	// the manifest names the config (its digest is the image ID) and the
	// layers by their diff IDs; all of it is in the content store
	raw, err := content.ReadBlob(ctx, cs, img.Target)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(raw), digest.FromBytes(imgs.config).String()))
	for _, l := range imgs.layers {
		b, err := content.ReadBlob(ctx, cs, ocispec.Descriptor{Digest: digest.FromBytes(l), Size: int64(len(l))})
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(b, l))
	}

	// a second Get copies nothing again, and names the same manifest
	img2, err := li.Get(ctx, "docker.io/library/busybox:latest")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(imgs.opens, 2))
	assert.Check(t, is.Equal(img2.Target.Digest, img.Target.Digest))

	_, err = li.Get(ctx, "docker.io/library/alpine:latest")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	list, err := li.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 0))
	_, err = li.Create(ctx, img)
	assert.Check(t, errdefs.IsNotImplemented(err))
}

func TestLocalImagesGetBadLayer(t *testing.T) {
	imgs := &fakeImages{layers: [][]byte{[]byte("layer one")}, config: []byte(`{}`), lie: true}
	li, cs := newLocalImages(t, imgs)
	_, err := li.Get(context.Background(), "docker.io/library/busybox:latest")
	assert.Check(t, is.ErrorContains(err, "copy layer 1 of image"))
	_, err = cs.Info(context.Background(), digest.FromBytes(imgs.layers[0]))
	assert.Check(t, errdefs.IsNotFound(err), "a layer that does not hash to its digest is not kept")
}

func TestParseNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "app", want: []string{"docker.io/library/app:latest"}},
		{in: "app:1, registry.test:5000/x/y:2 ,", want: []string{"docker.io/library/app:1", "registry.test:5000/x/y:2"}},
		{in: "App", err: "invalid tag \"App\""},
		{in: "app@sha256:" + digest.FromString("x").Encoded(), err: "a tag cannot hold a digest"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseNames(tc.in)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				assert.Check(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			var names []string
			for _, n := range got {
				names = append(names, n.String())
			}
			assert.Check(t, is.DeepEqual(names, tc.want))
		})
	}
}

func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"app", "a:1,b:2", "x@sha256:00", ",,", "UPPER", "host:5000/p/q:t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parseNames(s)
		if err != nil {
			return
		}
		for _, n := range names {
			if n.Tag() == "" {
				t.Fatalf("%q gave an untagged name %s", s, n)
			}
		}
	})
}

func TestPruneFilter(t *testing.T) {
	for _, tc := range []struct {
		fields map[string]string
		want   []string
	}{
		{nil, nil},
		{map[string]string{"type": "regular"}, []string{"type==regular"}},
		{map[string]string{"id": "abc", "inuse": "", "description": "RUN x"}, []string{"description==RUN x,id~=abc,inuse"}},
	} {
		assert.Check(t, is.DeepEqual(pruneFilter(PruneOptions{Fields: tc.fields}), tc.want))
	}
}

type fakeSandboxes struct{ joined, left []string }

func (f *fakeSandboxes) Join(ctx context.Context, id, hostname string) (string, error) {
	f.joined = append(f.joined, id)
	return "/run/netns/" + id, nil
}
func (f *fakeSandboxes) Leave(ctx context.Context, id string) error {
	f.left = append(f.left, id)
	return nil
}

func TestBridgeNamespace(t *testing.T) {
	sb := &fakeSandboxes{}
	ns, err := bridge{sandboxes: sb}.New(context.Background(), "host1", struct{}{})
	assert.NilError(t, err)
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}}}}
	assert.NilError(t, ns.Set(spec))
	assert.Check(t, is.Equal(spec.Linux.Namespaces[1].Path, "/run/netns/"+sb.joined[0]))
	assert.Check(t, is.Len(spec.Linux.Namespaces, 2))
	assert.NilError(t, ns.Close())
	assert.Check(t, is.DeepEqual(sb.left, sb.joined), "the step's sandbox is left when it ends")
}

func TestServeUpgradeRefusesOtherProtocols(t *testing.T) {
	s, err := New(Deps{Root: t.TempDir(), Images: &fakeImages{}})
	assert.NilError(t, err)
	defer s.Close()
	req := httptest.NewRequest(http.MethodPost, "/grpc", nil)
	req.Header.Set("Upgrade", "websocket")
	err = s.ServeUpgrade(context.Background(), httptest.NewRecorder(), req)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, !s.started(), "a refused request starts nothing")

	_, err = New(Deps{Root: t.TempDir()})
	assert.Check(t, err != nil, "images are required")
}

func TestDiskUsageOfADaemonThatNeverBuilt(t *testing.T) {
	s, err := New(Deps{Root: t.TempDir(), Images: &fakeImages{}})
	assert.NilError(t, err)
	defer s.Close()
	du, err := s.DiskUsage(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(du.TotalCount, int64(0)))
	rep, err := s.Prune(context.Background(), PruneOptions{All: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(rep.CachesDeleted, 0))
	assert.Check(t, !s.started(), "df and prune start nothing on a daemon that never built")
}
