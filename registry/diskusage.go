package registry

import (
	"context"

	"github.com/moby/moby/api/types/image"
)

// DiskUsage lists every image for `docker system df`, each with how many
// containers use it and the part of its size shared with other images
// (SharedSize), and returns the size of all layers counted once.
func (s *Service) DiskUsage(ctx context.Context) ([]image.Summary, int64, error) {
	list, err := s.Images(ctx, ListOptions{ContainerCount: true})
	if err != nil {
		return nil, 0, err
	}
	entries, err := s.entries()
	if err != nil {
		return nil, 0, err
	}
	refs := map[string]int{}
	sizes := map[string]int64{}
	for _, e := range entries {
		for i, id := range e.info.layerIDs {
			refs[id]++
			sizes[id] = e.info.layerSizes[i]
		}
	}
	shared := map[string]int64{}
	for _, e := range entries {
		var n int64
		for i, id := range e.info.layerIDs {
			if refs[id] > 1 {
				n += e.info.layerSizes[i]
			}
		}
		shared["sha256:"+e.img.ID] = n
	}
	var layersSize int64
	for _, sz := range sizes {
		layersSize += sz
	}
	for i := range list {
		list[i].SharedSize = shared[list[i].ID]
	}
	return list, layersSize, nil
}
