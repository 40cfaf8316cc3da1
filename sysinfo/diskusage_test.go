package sysinfo

import (
	"context"
	"testing"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
)

func TestDiskUsage(t *testing.T) {
	du, err := NewDiskUsage(DiskUsageSources{
		Images: func(context.Context) ([]image.Summary, int64, error) {
			// b shares 30 of its 50 with a: the layers hold 120
			return []image.Summary{{ID: "a", Size: 100, SharedSize: 30, Containers: 2}, {ID: "b", Size: 50, SharedSize: 30, Containers: 0}}, 120, nil
		},
		Containers: func(context.Context) ([]container.Summary, error) {
			return []container.Summary{{ID: "x", SizeRw: 10, State: container.StateRunning}, {ID: "y", SizeRw: 5, State: container.StateExited}}, nil
		},
		Volumes: func(context.Context) (*volume.DiskUsage, error) {
			return &volume.DiskUsage{TotalCount: 1, TotalSize: 7}, nil
		},
		BuildCache: func(context.Context) (*build.DiskUsage, error) {
			return &build.DiskUsage{TotalCount: 2, TotalSize: 9, Reclaimable: 4, Items: []build.CacheRecord{{ID: "r1"}, {ID: "r2"}}}, nil
		},
	})
	assert.NilError(t, err)
	got, err := du.DiskUsage(context.Background(), Kinds{})
	assert.NilError(t, err)
	assert.Equal(t, got.ImageUsage.TotalSize, int64(120))
	assert.Equal(t, got.ImageUsage.Reclaimable, int64(50))
	assert.Equal(t, got.ImageUsage.ActiveCount, int64(1))
	assert.Equal(t, got.ContainerUsage.TotalSize, int64(15))
	assert.Equal(t, got.ContainerUsage.Reclaimable, int64(5))
	assert.Equal(t, got.ContainerUsage.ActiveCount, int64(1))
	assert.Equal(t, got.VolumeUsage.TotalSize, int64(7))
	assert.Equal(t, got.BuildCacheUsage.TotalSize, int64(9))
	assert.Equal(t, len(got.BuildCacheUsage.Items), 2)

	only, err := du.DiskUsage(context.Background(), Kinds{Volumes: true})
	assert.NilError(t, err)
	assert.Check(t, only.ImageUsage == nil && only.ContainerUsage == nil && only.VolumeUsage != nil && only.BuildCacheUsage == nil)
}
