package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCommit(t *testing.T) {
	s, ev := newTestService(t)
	ctx := context.Background()
	base := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	cid := strings.Repeat("c1", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid, base, imagefs.RootfsOptions{}))
	defer s.RemoveRootfs(ctx, cid)

	// nothing written: an image with no new layer, an empty history entry
	cfg := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=1"}, Labels: map[string]string{"l": "v"}}}
	same, err := s.Commit(ctx, CommitRequest{ContainerID: cid, Config: cfg, CreatedBy: "sh"})
	assert.NilError(t, err)
	hist, err := s.History(ctx, same)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(hist[0].CreatedBy, "sh"))
	assert.Check(t, is.Equal(hist[0].Size, int64(0)))

	dir, err := s.MountRootfs(ctx, cid)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "hello"), []byte("hello\n"), 0o644))
	assert.NilError(t, os.Remove(filepath.Join(dir, "etc", "group")))
	assert.NilError(t, s.UnmountRootfs(ctx, cid))

	id, err := s.Commit(ctx, CommitRequest{
		ContainerID: cid, Config: cfg, Repo: "committed", Tag: "v1",
		Author: "me", Comment: "msg", CreatedBy: "sh -c write",
	})
	assert.NilError(t, err)
	assert.Check(t, id != same)
	insp, err := s.Inspect(ctx, "committed:v1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(insp.ID, id))
	assert.Check(t, is.Equal(insp.Author, "me"))
	assert.Check(t, is.Equal(insp.Comment, "msg"))
	assert.Check(t, is.DeepEqual(insp.Config.Cmd, []string{"sh"}))
	assert.Check(t, is.DeepEqual(insp.Config.Env, []string{"A=1"}))
	assert.Check(t, is.Equal(insp.Config.Labels["l"], "v"))
	assert.Check(t, is.Len(insp.RootFS.Layers, 2))
	assert.Check(t, is.Contains(ev.actions(), "tag"))

	// a container made from the new image sees the change
	cid2 := strings.Repeat("c2", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid2, id, imagefs.RootfsOptions{}))
	defer s.RemoveRootfs(ctx, cid2)
	dir, err = s.MountRootfs(ctx, cid2)
	assert.NilError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "hello\n"))
	_, err = os.Stat(filepath.Join(dir, "etc", "group"))
	assert.Check(t, os.IsNotExist(err), "the deletion is committed too")
	assert.NilError(t, s.UnmountRootfs(ctx, cid2))

	// it exports like any other image
	var buf bytes.Buffer
	assert.NilError(t, s.Save(ctx, []string{"committed:v1"}, func() io.Writer { return &buf }))
	assert.Check(t, buf.Len() > 1e6)

	_, err = s.Commit(ctx, CommitRequest{ContainerID: strings.Repeat("d0", 32), Config: cfg})
	assert.Check(t, errdefs.IsNotFound(err))
	n, err := s.CountImages(ctx)
	assert.NilError(t, err)
	_, err = s.Commit(ctx, CommitRequest{ContainerID: cid, Config: cfg, Repo: "Bad"})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	after, err := s.CountImages(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(after, n), "a refused commit makes no image")
}

func TestScratch(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	id, err := s.Scratch(ctx)
	assert.NilError(t, err)
	again, err := s.Scratch(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again, id), "made once")

	// a container of it starts empty; what is copied in is committed
	cid := strings.Repeat("c3", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid, id, imagefs.RootfsOptions{}))
	defer s.RemoveRootfs(ctx, cid)
	dir, err := s.MountRootfs(ctx, cid)
	assert.NilError(t, err)
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Len(ents, 0))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "app"), []byte("bin"), 0o755))
	assert.NilError(t, s.UnmountRootfs(ctx, cid))
	img, err := s.Commit(ctx, CommitRequest{ContainerID: cid, Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Entrypoint: []string{"/app"}}}, Repo: "tiny"})
	assert.NilError(t, err)
	insp, err := s.Inspect(ctx, "tiny")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(insp.ID, img))
	assert.Check(t, is.Len(insp.RootFS.Layers, 1))
	var buf bytes.Buffer
	assert.NilError(t, s.Save(ctx, []string{"tiny"}, func() io.Writer { return &buf }))
}

func TestImport(t *testing.T) {
	s, ev := newTestService(t)
	ctx := context.Background()
	tb := tarOf(t, map[string]string{"hi.txt": "hi\n"})
	start, out := memOut()
	err := s.Import(ctx, bytes.NewReader(tb), ImportOptions{Repo: "imported", Tag: "v1", Message: "msg", Changes: []string{`CMD ["cat", "/hi.txt"]`}}, start)
	assert.NilError(t, err)
	insp, err := s.Inspect(ctx, "imported:v1")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(fmt.Sprint(out.msgs), insp.ID), "the stream's status is the new ID")
	assert.Check(t, is.Equal(insp.Comment, "msg"))
	assert.Check(t, is.DeepEqual(insp.Config.Cmd, []string{"cat", "/hi.txt"}))
	assert.Check(t, is.Len(insp.RootFS.Layers, 1))
	assert.Check(t, is.Contains(ev.actions(), "import"))

	n, _ := s.CountImages(ctx)
	for _, tc := range []struct {
		body string
		opts ImportOptions
		msg  string
	}{
		{"not a tar", ImportOptions{}, "invalid tarball"},
		{string(tb), ImportOptions{Repo: "Bad"}, "invalid reference format"},
		{string(tb), ImportOptions{Changes: []string{"RUN x"}}, "run is not a valid change command"},
	} {
		start, _ := memOut()
		err := s.Import(ctx, strings.NewReader(tc.body), tc.opts, start)
		assert.Check(t, is.ErrorContains(err, tc.msg))
		assert.Check(t, errdefs.IsInvalidArgument(err))
	}
	after, _ := s.CountImages(ctx)
	assert.Check(t, is.Equal(after, n), "refused imports leave no image")
}
