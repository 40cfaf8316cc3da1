package sysinfo

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// DiskUsageSources list what GET /system/df reports; cmd/berthd adapts the
// image, container and volume services to them.
type DiskUsageSources struct {
	// Images lists every image with its size, shared size and container
	// count, and the size of all layers counted once.
	Images func(ctx context.Context) ([]image.Summary, int64, error)
	// Containers lists every container with SizeRw and SizeRootFs.
	Containers func(ctx context.Context) ([]container.Summary, error)
	// Volumes reports the local volumes with their usage.
	Volumes func(ctx context.Context) (*volume.DiskUsage, error)
	// BuildCache reports BuildKit's cache records.
	BuildCache func(ctx context.Context) (*build.DiskUsage, error)
}

// DiskUsage gathers the kinds of objects asked for (all when none is).
type DiskUsage struct {
	src DiskUsageSources
}

// NewDiskUsage checks the sources.
func NewDiskUsage(src DiskUsageSources) (*DiskUsage, error) {
	if src.Images == nil || src.Containers == nil || src.Volumes == nil || src.BuildCache == nil {
		return nil, fmt.Errorf("sysinfo: disk usage needs images, containers, volumes and the build cache")
	}
	return &DiskUsage{src: src}, nil
}

// Kinds selects what to report.
type Kinds struct {
	Containers, Images, Volumes, BuildCache bool
}

// DiskUsage answers GET /system/df.
func (d *DiskUsage) DiskUsage(ctx context.Context, k Kinds) (*system.DiskUsage, error) {
	if !k.Containers && !k.Images && !k.Volumes && !k.BuildCache {
		k = Kinds{true, true, true, true}
	}
	out := &system.DiskUsage{}
	if k.Images {
		imgs, layers, err := d.src.Images(ctx)
		if err != nil {
			return nil, err
		}
		du := &image.DiskUsage{Items: imgs, TotalCount: int64(len(imgs)), TotalSize: layers}
		var used int64
		for _, img := range imgs {
			if img.Containers > 0 {
				du.ActiveCount++
				used += img.Size - img.SharedSize
			}
		}
		du.Reclaimable = max(layers-used, 0)
		out.ImageUsage = du
	}
	if k.Containers {
		ctrs, err := d.src.Containers(ctx)
		if err != nil {
			return nil, err
		}
		du := &container.DiskUsage{Items: ctrs, TotalCount: int64(len(ctrs))}
		for _, c := range ctrs {
			du.TotalSize += c.SizeRw
			if c.State == container.StateRunning || c.State == container.StatePaused {
				du.ActiveCount++
			} else {
				du.Reclaimable += c.SizeRw
			}
		}
		out.ContainerUsage = du
	}
	if k.Volumes {
		du, err := d.src.Volumes(ctx)
		if err != nil {
			return nil, err
		}
		out.VolumeUsage = du
	}
	if k.BuildCache {
		du, err := d.src.BuildCache(ctx)
		if err != nil {
			return nil, err
		}
		out.BuildCacheUsage = du
	}
	return out, nil
}
