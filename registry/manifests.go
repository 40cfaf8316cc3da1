package registry

import (
	"encoding/json"

	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// manifestSummaries is GET /images/json?manifests=1's Manifests of e, as a
// dockerd with the containerd image store answers: berth keeps one
// manifest per image, for the image's own platform, always available.
func (s *Service) manifestSummaries(e entry) []image.ManifestSummary {
	raw, err := s.store.ImageBigData(e.img.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		return []image.ManifestSummary{}
	}
	var m ocispec.Manifest
	_ = json.Unmarshal(raw, &m)
	mediaType := m.MediaType
	if mediaType == "" {
		mediaType = ocispec.MediaTypeImageManifest
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: e.img.Digest, Size: int64(len(raw))}
	if desc.Digest == "" {
		return []image.ManifestSummary{}
	}
	platform := ocispec.Platform{Architecture: e.info.spec.Architecture, OS: e.info.spec.OS, Variant: e.info.spec.Variant, OSVersion: e.info.spec.OSVersion}
	desc.Platform = &platform
	sum := image.ManifestSummary{ID: desc.Digest.String(), Descriptor: desc, Available: true, Kind: image.ManifestKindImage}
	content := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		content += l.Size
	}
	sum.Size.Content = content
	sum.Size.Total = content
	props := &image.ImageProperties{Platform: platform, Containers: []string{}}
	props.Size.Unpacked = e.info.size
	if users, err := s.usersOf(e.img.ID); err == nil {
		for _, u := range users {
			props.Containers = append(props.Containers, u.id)
		}
	}
	sum.ImageData = props
	return []image.ManifestSummary{sum}
}
