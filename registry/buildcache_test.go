package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/registry/imagefs"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func cfgWith(env ...string) dockerspec.DockerOCIImageConfig {
	return dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Env: env}}
}

// TestBuildCacheChain: step images record their parent and key; the cache
// finds the newest child of a parent with a key; intermediate images are
// listed with all=1 only, and go with their last child.
func TestBuildCacheChain(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	base := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})

	step1, err := s.Child(ctx, ChildRequest{Parent: base, Config: cfgWith("A=1"), CreatedBy: "/bin/sh -c #(nop)  ENV A=1", CacheKey: "k1"})
	assert.NilError(t, err)
	cid := strings.Repeat("b1", 32)
	assert.NilError(t, s.CreateRootfs(ctx, cid, step1, imagefs.RootfsOptions{}))
	step2, err := s.Commit(ctx, CommitRequest{ContainerID: cid, Config: cfgWith("A=1"), CreatedBy: "/bin/sh -c true", CacheKey: "k2"})
	assert.NilError(t, err)
	assert.NilError(t, s.RemoveRootfs(ctx, cid))
	assert.NilError(t, s.Tag(ctx, step2, "built", "1"))

	for _, tc := range []struct {
		parent, key, want string
	}{
		{base, "k1", step1}, {step1, "k2", step2}, {base, "k2", ""}, {step1, "k1", ""}, {step2, "k3", ""},
	} {
		got, err := s.CachedStep(ctx, CacheQuery{Parent: tc.parent, Key: tc.key})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, tc.want), "%s %s", ShortID(tc.parent), tc.key)
	}

	// history names the step images, as dockerd's does
	hist, err := s.History(ctx, "built:1")
	assert.NilError(t, err)
	assert.Assert(t, len(hist) >= 3)
	assert.Check(t, is.Equal(hist[0].ID, step2))
	assert.Check(t, is.DeepEqual(hist[0].Tags, []string{"built:1"}))
	assert.Check(t, is.Equal(hist[1].ID, step1))
	assert.Check(t, is.Equal(hist[1].CreatedBy, "/bin/sh -c #(nop)  ENV A=1"))
	assert.Check(t, is.Equal(hist[2].ID, base))

	list := func(all bool, f filters.Args) []string {
		sums, err := s.Images(ctx, ListOptions{All: all, Filters: f})
		assert.NilError(t, err)
		var ids []string
		for _, sum := range sums {
			ids = append(ids, sum.ID+"^"+sum.ParentID)
		}
		return ids
	}
	assert.Check(t, is.Len(list(false, filters.New()), 2), "step1 is an intermediate image")
	assert.Check(t, is.Contains(list(true, filters.New()), step1+"^"+base))
	assert.Check(t, is.Len(list(true, filters.New([2]string{"dangling", "true"})), 0))

	// a parent cannot go while its child is there
	_, err = s.Delete(ctx, step1, false, true)
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.ErrorContains(err, "image has dependent child images"))
	// rmi of the tag takes the chain up to the tagged base
	recs, err := s.Delete(ctx, "built:1", false, true)
	assert.NilError(t, err)
	var deleted []string
	for _, r := range recs {
		deleted = append(deleted, r.Deleted)
	}
	assert.Check(t, is.Contains(deleted, step2))
	assert.Check(t, is.Contains(deleted, step1))
	assert.Check(t, is.Len(list(true, filters.New()), 1))
	got, err := s.CachedStep(ctx, CacheQuery{Parent: base, Key: "k1"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, ""))
}

// TestBuildCacheFromHistory: with Sources, an image without parents (as
// loaded) gives the step whose history entry continues the parent's.
func TestBuildCacheFromHistory(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	base := loadImage(t, s, testimage.Options{Tag: "busybox:latest"})
	step1, err := s.Child(ctx, ChildRequest{Parent: base, Config: cfgWith("A=1"), CreatedBy: "step one", CacheKey: "k1"})
	assert.NilError(t, err)
	step2, err := s.Child(ctx, ChildRequest{Parent: step1, Config: cfgWith("A=2"), CreatedBy: "step two", CacheKey: "k2"})
	assert.NilError(t, err)

	// another key, so the local cache misses; the history matches
	got, err := s.CachedStep(ctx, CacheQuery{Parent: base, Key: "other", CreatedBy: "step one", Config: cfgWith("A=1"), Sources: []string{step2}})
	assert.NilError(t, err)
	assert.Check(t, got != "", "an image of the step (restored: here the same config as step1, so step1)")
	img, err := s.Image(ctx, got)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(img.Config.Env, []string{"A=1"}))
	last, err := s.CachedStep(ctx, CacheQuery{Parent: got, Key: "other2", CreatedBy: "step two", Sources: []string{step2}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(last, step2), "the last step is the source itself")
	none, err := s.CachedStep(ctx, CacheQuery{Parent: base, Key: "other", CreatedBy: "step zero", Sources: []string{step2}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(none, ""))
}
