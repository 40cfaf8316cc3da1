package registry

import (
	"sort"
	"testing"

	"go.podman.io/storage"
	"gotest.tools/v3/assert"
)

func TestOrphanLayers(t *testing.T) {
	layers := []storage.Layer{
		{ID: "base"}, {ID: "app", Parent: "base"}, // an image
		{ID: "rw", Parent: "app"},            // a container on it
		{ID: "p1"}, {ID: "p2", Parent: "p1"}, // a pull cut before its image was written
		{ID: "mapped-base"}, {ID: "mapped", Parent: "mapped-base"}, // an image's mapped top layer
	}
	images := []storage.Image{{ID: "img", TopLayer: "app", MappedTopLayers: []string{"mapped"}}}
	ctrs := []storage.Container{{ID: "c", LayerID: "rw"}}
	got := orphanLayers(layers, images, ctrs)
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	assert.DeepEqual(t, ids, []string{"p1", "p2"})
	assert.Assert(t, hasChild(got, "p1"))
	assert.Assert(t, !hasChild(got, "p2"))
}
