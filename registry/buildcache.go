package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// The image data items where berth keeps what dockerd keeps in its image
// store beside the config: the parent image (docker commit's and each
// Dockerfile step's), the classic builder's cache key of the step that made
// the image, and the mark of the FROM scratch base.
const (
	parentKey   = "berth.parent"
	cacheKeyKey = "berth.cache-key"
	scratchKey  = "berth.scratch"
)

// imageMeta is what storeImage records beside an image's config.
type imageMeta struct {
	parent   string // "sha256:<hex>", or "" for none
	cacheKey string // set on images the classic builder made
	scratch  bool
}

func (m imageMeta) bigData() []storage.ImageBigDataOption {
	var out []storage.ImageBigDataOption
	if m.parent != "" {
		out = append(out, storage.ImageBigDataOption{Key: parentKey, Data: []byte(m.parent), Digest: digest.FromString(m.parent)})
	}
	if m.cacheKey != "" {
		out = append(out, storage.ImageBigDataOption{Key: cacheKeyKey, Data: []byte(m.cacheKey), Digest: digest.FromString(m.cacheKey)})
	}
	if m.scratch {
		out = append(out, storage.ImageBigDataOption{Key: scratchKey, Data: []byte("1"), Digest: digest.FromString("1")})
	}
	return out
}

// meta is img's imageMeta, read once with its info.
func (s *Service) meta(img *storage.Image) imageMeta {
	if in, err := s.info(img); err == nil {
		return in.meta
	}
	return s.readMeta(img)
}

// readMeta reads the items of imageMeta that img has.
func (s *Service) readMeta(img *storage.Image) imageMeta {
	var m imageMeta
	if slices.Contains(img.BigDataNames, parentKey) {
		if b, err := s.store.ImageBigData(img.ID, parentKey); err == nil {
			m.parent = string(b)
		}
	}
	if slices.Contains(img.BigDataNames, cacheKeyKey) {
		if b, err := s.store.ImageBigData(img.ID, cacheKeyKey); err == nil {
			m.cacheKey = string(b)
		}
	}
	m.scratch = slices.Contains(img.BigDataNames, scratchKey)
	return m
}

// ChildRequest is a Dockerfile step that changes only the config (ENV,
// LABEL, CMD, ...): a new image of Parent's layers with Config.
type ChildRequest struct {
	Parent            string
	Config            dockerspec.DockerOCIImageConfig
	Author, CreatedBy string
	// CacheKey identifies the step for later builds (see CachedStep).
	CacheKey string
}

// Child makes the image of a config-only step and returns its ID. An
// unknown parent is ErrNotFound.
func (s *Service) Child(ctx context.Context, req ChildRequest) (string, error) {
	base, err := s.lookup(req.Parent)
	if err != nil {
		return "", err
	}
	in, err := s.info(base)
	if err != nil {
		return "", err
	}
	config, err := s.commitConfig(in.spec, base.TopLayer, true, CommitRequest{
		Config: req.Config, Author: req.Author, CreatedBy: req.CreatedBy,
	})
	if err != nil {
		return "", err
	}
	return s.storeImage(config, base.TopLayer, imageMeta{parent: s.parentRef(base), cacheKey: req.CacheKey})
}

// parentRef is the parent a child of img records: img's ID, or none for
// the scratch base (dockerd's FROM scratch images have no parent).
func (s *Service) parentRef(img *storage.Image) string {
	if s.meta(img).scratch {
		return ""
	}
	return "sha256:" + img.ID
}

// CacheQuery asks for the image an earlier build made for a step.
type CacheQuery struct {
	// Parent is the image the step starts from; Key the step's cache key
	// (the builder's rendering of the step's run config).
	Parent, Key string
	// CreatedBy is the history entry the step writes, matched against
	// the history of the Sources (docker build --cache-from images, which
	// were not built here). Config is the run config an image restored
	// from one of them gets.
	CreatedBy string
	Config    dockerspec.DockerOCIImageConfig
	Sources   []string
}

// CachedStep returns the ID of the image that an earlier build made from
// q.Parent for the same step, or "" when there is none, as dockerd's
// image cache does: the newest child of Parent built with the same key;
// with Sources, only such a child that is an ancestor of a source, or else
// the next step of a source whose history continues Parent's with
// CreatedBy (an image of it is made here, as dockerd restores it).
func (s *Service) CachedStep(ctx context.Context, q CacheQuery) (string, error) {
	parent, err := s.lookup(q.Parent)
	if err != nil {
		return "", err
	}
	local, err := s.localCache(parent, q.Key)
	if err != nil || len(q.Sources) == 0 {
		return local, err
	}
	for _, src := range q.Sources {
		if local != "" && s.isAncestor(src, local) {
			return local, nil
		}
	}
	return s.cacheFromSources(parent, q)
}

// localCache is the newest image built from parent with key.
func (s *Service) localCache(parent *storage.Image, key string) (string, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return "", err
	}
	want := "sha256:" + parent.ID
	if s.meta(parent).scratch {
		want = "" // children of scratch have no parent, as in dockerd
	}
	var match string
	var newest time.Time
	for i := range imgs {
		m := s.meta(&imgs[i])
		if m.cacheKey != key || m.parent != want {
			continue
		}
		in, err := s.info(&imgs[i])
		if err != nil {
			continue
		}
		if c := created(&imgs[i], in); match == "" || c.After(newest) {
			match, newest = "sha256:"+imgs[i].ID, c
		}
	}
	return match, nil
}

// isAncestor reports whether id is img or one of its parents.
func (s *Service) isAncestor(img, id string) bool {
	for seen := 0; img != "" && seen < 1000; seen++ {
		if img == id {
			return true
		}
		si, err := s.lookup(img)
		if err != nil {
			return false
		}
		img = s.meta(si).parent
	}
	return false
}

// cacheFromSources is dockerd's history-based cache over --cache-from
// images: a source whose history starts with parent's (and whose layers
// do) and continues with the step's CreatedBy gives the step's image.
func (s *Service) cacheFromSources(parent *storage.Image, q CacheQuery) (string, error) {
	pin, err := s.info(parent)
	if err != nil {
		return "", err
	}
	scratch := s.meta(parent).scratch
	n := len(pin.spec.History)
	for _, src := range q.Sources {
		img, err := s.lookup(src)
		if err != nil {
			continue
		}
		in, err := s.info(img)
		if err != nil {
			continue
		}
		if !historyContinues(pin, in, scratch) || in.spec.History[n].CreatedBy != q.CreatedBy {
			continue
		}
		if len(in.spec.History)-1 == n {
			return "sha256:" + img.ID, nil
		}
		return s.restoreStep(parent, pin, img, in, q)
	}
	return "", nil
}

// historyContinues is dockerd's isValidParent: img has more history than
// parent, and parent's history and layers are the start of img's.
func historyContinues(parent, img *imageInfo, scratch bool) bool {
	ph, ih := parent.spec.History, img.spec.History
	if len(ih) == 0 {
		return false
	}
	if scratch || len(ph) == 0 && len(parent.spec.RootFS.DiffIDs) == 0 {
		return true
	}
	if len(ph) >= len(ih) || len(parent.spec.RootFS.DiffIDs) > len(img.spec.RootFS.DiffIDs) {
		return false
	}
	for i := range ph {
		if !reflect.DeepEqual(historyJSON(ph[i]), historyJSON(ih[i])) {
			return false
		}
	}
	for i, d := range parent.spec.RootFS.DiffIDs {
		if img.spec.RootFS.DiffIDs[i] != d {
			return false
		}
	}
	return true
}

// historyJSON compares history entries as they are written (times in UTC).
func historyJSON(h ocispec.History) string {
	b, _ := json.Marshal(h)
	return string(b)
}

// restoreStep makes the image of step n (len(parent's history)) of the
// source img on parent: parent's history and layers plus the step's.
func (s *Service) restoreStep(parent *storage.Image, pin *imageInfo, img *storage.Image, in *imageInfo, q CacheQuery) (string, error) {
	n := len(pin.spec.History)
	step := in.spec.History[n]
	top := parent.TopLayer
	diffIDs := slices.Clone(pin.spec.RootFS.DiffIDs)
	if !step.EmptyLayer {
		k := 0
		for _, h := range in.spec.History[:n] {
			if !h.EmptyLayer {
				k++
			}
		}
		if k >= len(in.layerIDs) || k >= len(in.spec.RootFS.DiffIDs) {
			return "", fmt.Errorf("cache image %s: history and layers disagree: %w", ShortID(img.ID), errdefs.ErrDataLoss)
		}
		top = in.layerIDs[k]
		diffIDs = append(diffIDs, in.spec.RootFS.DiffIDs[k])
	}
	spec := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  step.Created,
			Author:   in.spec.Author,
			Platform: in.spec.Platform,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: append([]digest.Digest{}, diffIDs...)},
			History:  append(slices.Clone(pin.spec.History), step),
		},
		Config: q.Config,
	}
	config, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return s.storeImage(config, top, imageMeta{parent: s.parentRef(parent), cacheKey: q.Key})
}

// children counts, per image ID, the images whose parent it is.
func (s *Service) children() (map[string]int, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for i := range imgs {
		if p := s.meta(&imgs[i]).parent; p != "" {
			out[strings.TrimPrefix(p, "sha256:")]++
		}
	}
	return out, nil
}

// Parent is the ID of the image img was made from (by docker commit or a
// Dockerfile step), or "" (pulled, loaded and imported images have none).
func (s *Service) parentOf(img *storage.Image) string {
	return s.meta(img).parent
}

// historyIDs fills in the IDs and tags of hist (newest first) as dockerd
// does: the image's own, then its parent's for the entry before, and so on
// while there are parents here (a built image's steps); "<missing>" after.
func (s *Service) historyIDs(hist []image.HistoryResponseItem, img *storage.Image) {
	for i := range hist {
		if img == nil {
			return
		}
		tags, _ := splitNames(img.Names)
		hist[i].ID, hist[i].Tags = "sha256:"+img.ID, tags
		parent := s.meta(img).parent
		img = nil
		if parent != "" {
			img, _ = s.lookup(parent)
		}
	}
}
