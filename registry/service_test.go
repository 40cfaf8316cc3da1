package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"github.com/berthd/berth/registry/transfer"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.podman.io/storage/pkg/reexec"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// These tests drive a real layer store (overlay): they need root, like
// berthd itself.

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

type eventLog struct {
	mu   sync.Mutex
	msgs []events.Message
}

func (l *eventLog) Publish(m events.Message) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}

func (l *eventLog) actions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.msgs {
		out = append(out, string(m.Action))
	}
	return out
}

func newTestService(t *testing.T) (*Service, *eventLog) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the image service tests need root (overlay mounts)")
	}
	root := t.TempDir()
	ev := &eventLog{}
	s, err := New(Deps{DataRoot: filepath.Join(root, "data"), ExecRoot: filepath.Join(root, "run"), Events: ev, Transfers: transfer.InProcess{}})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_, _ = s.store.Shutdown(true)
	})
	return s, ev
}

type recordOutput struct{ msgs []any }

func (r *recordOutput) Send(v any) error { r.msgs = append(r.msgs, v); return nil }

// discardOut is a StartFunc whose stream is kept in memory.
func memOut() (StartFunc, *recordOutput) {
	out := &recordOutput{}
	return func() Output { return out }, out
}

func loadImage(t *testing.T, s *Service, o testimage.Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	res, err := testimage.WriteDockerArchive(p, o)
	assert.NilError(t, err)
	f, err := os.Open(p)
	assert.NilError(t, err)
	defer f.Close()
	start, _ := memOut()
	assert.NilError(t, s.Load(context.Background(), f, true, start))
	return res.ImageID
}

func TestServiceImageAndRootfs(t *testing.T) {
	s, ev := newTestService(t)
	ctx := context.Background()
	id := loadImage(t, s, testimage.Options{Tag: "busybox:latest", Env: []string{"A=1"}, StopSignal: "SIGQUIT"})

	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox", id, id[7:], id[7:19]} {
		img, err := s.Image(ctx, ref)
		assert.NilError(t, err, ref)
		assert.Check(t, is.Equal(img.ID, id))
		assert.DeepEqual(t, img.RepoTags, []string{"busybox:latest"})
		assert.DeepEqual(t, img.Config.Env, []string{"A=1"})
		assert.Check(t, is.Equal(img.Config.StopSignal, "SIGQUIT"))
	}
	_, err := s.Image(ctx, "nope")
	assert.Check(t, errdefs.IsNotFound(err))
	assert.Check(t, is.ErrorContains(err, "No such image: nope"))
	n, err := s.CountImages(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, 1))

	cid := strings.Repeat("c0", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid, id, imagefs.RootfsOptions{}))
	assert.Check(t, errdefs.IsAlreadyExists(s.CreateRootfs(ctx, cid, id, imagefs.RootfsOptions{})))
	assert.Check(t, errdefs.IsNotFound(s.CreateRootfs(ctx, strings.Repeat("d0", 32), "sha256:"+strings.Repeat("0", 64), imagefs.RootfsOptions{})))

	dir, err := s.MountRootfs(ctx, cid)
	assert.NilError(t, err)
	_, err = os.Stat(filepath.Join(dir, "bin", "busybox"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "written"), bytes.Repeat([]byte("x"), 100_000), 0o644))
	size, total, err := s.RootfsSize(ctx, cid)
	assert.NilError(t, err)
	assert.Check(t, size >= 100_000, size)
	assert.Check(t, total > size+1_000_000, "the image's busybox counts too: %d", total)
	assert.NilError(t, os.Remove(filepath.Join(dir, "etc", "group")))
	changes, err := s.RootfsChanges(ctx, cid)
	assert.NilError(t, err)
	got := map[string]container.ChangeType{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	assert.Check(t, is.Equal(got["/written"], container.ChangeAdd), "%v", changes)
	assert.Check(t, is.Equal(got["/etc/group"], container.ChangeDelete), "%v", changes)
	_, err = s.RootfsChanges(ctx, strings.Repeat("e0", 32))
	assert.Check(t, errdefs.IsNotFound(err))

	// the image is in use: removing its only name needs force, and even
	// forced the image stays while the container's rootfs is mounted
	_, err = s.Delete(ctx, "busybox", false, true)
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.ErrorContains(err, `conflict: unable to remove repository reference "busybox" (must force) - container c0c0c0c0c0c0 is using its referenced image `+id[7:19]))
	_, err = s.Delete(ctx, id, true, true)
	assert.Check(t, is.ErrorContains(err, "(cannot be forced) - image is being used by running container c0c0c0c0c0c0"))

	assert.NilError(t, s.UnmountRootfs(ctx, cid))
	assert.NilError(t, s.UnmountRootfs(ctx, cid)) // idempotent
	_, err = s.Delete(ctx, id, false, true)
	assert.Check(t, is.ErrorContains(err, "(must be forced) - image is being used by stopped container c0c0c0c0c0c0"))

	assert.NilError(t, s.RemoveRootfs(ctx, cid))
	assert.NilError(t, s.RemoveRootfs(ctx, cid)) // idempotent
	_, err = s.MountRootfs(ctx, cid)
	assert.Check(t, errdefs.IsNotFound(err))

	recs, err := s.Delete(ctx, "busybox", false, true)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(recs[0].Untagged, "busybox:latest"))
	assert.Check(t, is.Equal(recs[1].Deleted, id))
	n, _ = s.CountImages(ctx)
	assert.Check(t, is.Equal(n, 0))
	assert.DeepEqual(t, ev.actions(), []string{"load", "untag", "delete"})
}

// TestMountLatency measures what a container start and stop pay for the
// root filesystem.
func TestMountLatency(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	id := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	const n = 30
	var create, mount, unmount, remove []time.Duration
	for i := 0; i < n; i++ {
		cid := strings.Repeat(string("0123456789abcdef"[i%16]), 60) + "beef"
		t0 := time.Now()
		assert.NilError(t, s.CreateRootfs(ctx, cid, id, imagefs.RootfsOptions{}))
		t1 := time.Now()
		_, err := s.MountRootfs(ctx, cid)
		assert.NilError(t, err)
		t2 := time.Now()
		assert.NilError(t, s.UnmountRootfs(ctx, cid))
		t3 := time.Now()
		assert.NilError(t, s.RemoveRootfs(ctx, cid))
		t4 := time.Now()
		create, mount, unmount, remove = append(create, t1.Sub(t0)), append(mount, t2.Sub(t1)), append(unmount, t3.Sub(t2)), append(remove, t4.Sub(t3))
	}
	med := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	t.Logf("rootfs median of %d: create %v, mount %v, unmount %v, remove %v", n, med(create), med(mount), med(unmount), med(remove))
	// generous bounds: a regression to seconds (e.g. a sync per mount) must fail
	assert.Check(t, med(mount) < 100*time.Millisecond)
	assert.Check(t, med(unmount) < 100*time.Millisecond)
}

func TestServiceLoadRejectsNonImages(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	for name, body := range map[string][]byte{
		"empty":        nil,
		"garbage":      bytes.Repeat([]byte("not a tar "), 100),
		"tar":          tarOf(t, map[string]string{"hello.txt": "hi"}),
		"bad manifest": tarOf(t, map[string]string{"manifest.json": "{not json"}),
	} {
		t.Run(name, func(t *testing.T) {
			started := false
			err := s.Load(ctx, bytes.NewReader(body), true, func() Output { started = true; return &recordOutput{} })
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.Check(t, !started)
			n, _ := s.CountImages(ctx)
			assert.Check(t, is.Equal(n, 0))
			left, _ := os.ReadDir(s.tmpDir)
			assert.Check(t, is.Len(left, 0))
		})
	}
}

func TestServiceTagSavePrune(t *testing.T) {
	s, ev := newTestService(t)
	ctx := context.Background()
	id := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	other := loadImage(t, s, testimage.Options{Tag: "other:1", Comment: "other", Labels: map[string]string{"keep": "yes"}})

	assert.NilError(t, s.Tag(ctx, "busybox", "example.com/a/b", "v1"))
	assert.Check(t, errdefs.IsInvalidArgument(s.Tag(ctx, "busybox", "Bad", "")))
	assert.Check(t, errdefs.IsInvalidArgument(s.Tag(ctx, "busybox", "x@sha256:"+strings.Repeat("a", 64), "")))
	assert.Check(t, errdefs.IsNotFound(s.Tag(ctx, "nope", "x", "")))
	img, err := s.Image(ctx, "example.com/a/b:v1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(img.ID, id))
	insp, err := s.Inspect(ctx, "example.com/a/b:v1")
	assert.NilError(t, err)
	assert.Check(t, time.Since(insp.Metadata.LastTagTime) < time.Minute, insp.Metadata.LastTagTime)

	// moving a tag takes it from the image that had it
	assert.NilError(t, s.Tag(ctx, other, "busybox", "latest"))
	img, _ = s.Image(ctx, "busybox")
	assert.Check(t, is.Equal(img.ID, other))

	var buf bytes.Buffer
	assert.NilError(t, s.Save(ctx, []string{"busybox", id}, func() io.Writer { return &buf }))
	assert.Check(t, buf.Len() > 1e6)
	err = s.Save(ctx, []string{"nope"}, func() io.Writer { t.Fatal("started"); return nil })
	assert.Check(t, errdefs.IsNotFound(err))

	// prune: nothing dangling yet; with dangling=false everything unused
	// except what the label filter keeps
	rep, err := s.Prune(ctx, filters.Args{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(rep.ImagesDeleted, 0))
	f, _ := filters.Parse(`{"dangling":{"false":true},"label!":{"keep":true}}`)
	rep, err = s.Prune(ctx, f)
	assert.NilError(t, err)
	var deleted []string
	for _, r := range rep.ImagesDeleted {
		if r.Deleted != "" {
			deleted = append(deleted, r.Deleted)
		}
	}
	assert.Check(t, is.Contains(deleted, id))
	assert.Check(t, rep.SpaceReclaimed > 0)
	_, err = s.Image(ctx, other)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(ev.actions(), "prune"))
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, _ = tw.Write([]byte(body))
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func TestErrorMessage(t *testing.T) {
	b, err := json.Marshal(ErrorMessage(errors.New("boom")))
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"errorDetail":{"message":"boom"},"error":"boom"}`)
}
