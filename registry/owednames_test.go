package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"go.podman.io/storage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func owedNotes(t *testing.T, s *Service) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(s.owedDir())
	if os.IsNotExist(err) {
		return nil
	}
	assert.NilError(t, err)
	return ents
}

// A pull or load that ends leaves no note; one cut between the image's
// creation and its names (made here by taking the names off and writing
// the note back) gets its names at the next start, and its last-tag time.
func TestPayOwedNames(t *testing.T) {
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	ref := reg.Addr + "/library/busybox:latest"
	ctx := context.Background()
	s, _ := newTestService(t)

	start, _ := memOut()
	assert.NilError(t, s.Pull(ctx, PullOptions{FromImage: ref}, start))
	assert.Check(t, is.Len(owedNotes(t, s), 0), "a whole pull leaves its note")
	loaded := loadImage(t, s, testimage.Options{Tag: "local/one:1", Comment: "another image"})
	assert.Check(t, is.Len(owedNotes(t, s), 0), "a whole load leaves its note")

	for round := 0; round < 3; round++ { // a second and third cut of the same images
		for _, img := range []string{id, loaded} {
			img = strings.TrimPrefix(img, "sha256:")
			names := mustImage(t, s, img).Names
			assert.Assert(t, len(names) > 0, "%s round %d", img, round)
			// cut after the image was made, before any name, and before
			// its last-tag time was written
			assert.NilError(t, s.store.RemoveNames(img, names))
			assert.NilError(t, s.store.SetImageBigData(img, lastTagKey, []byte("unset"), nil))
			_, err := s.owe(img, names)
			assert.NilError(t, err)
		}
		// a pull cut before its image was made, and a note cut mid-write
		_, err := s.owe(strings.Repeat("0123456789abcdef", 4), []string{"docker.io/nowhere/x:latest"})
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(s.owedDir(), "cut-123.json"), []byte(`{"id":"`), 0o600))

		n, err := s.PayOwedNames()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(n, 2), "round %d", round)
		assert.Check(t, is.Len(owedNotes(t, s), 0), "round %d: notes are kept", round)
		img, err := s.Image(ctx, ref)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(img.ID, id))
		assert.Check(t, is.Len(img.RepoDigests, 1), "round %d", round)
		for _, img := range []string{id, loaded} {
			assert.Check(t, !s.lastTagTime(mustImage(t, s, strings.TrimPrefix(img, "sha256:"))).IsZero(), "round %d: no last-tag time", round)
		}
		img, err = s.Image(ctx, "local/one:1")
		assert.NilError(t, err, "round %d", round)
		assert.Check(t, is.Equal(img.ID, loaded))
	}
	// nothing owed: nothing done
	n, err := s.PayOwedNames()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, 0))
}

func mustImage(t *testing.T, s *Service, id string) *storage.Image {
	t.Helper()
	img, err := s.store.Image(id)
	assert.NilError(t, err)
	return img
}

// A copy cut inside containers/storage's CreateImage (the record saved, its
// config or manifest not yet) leaves an image no command can use: the start
// removes it, whichever of the two it lacks, and the whole image beside it
// (sharing its layer) keeps its names, layers and config.
func TestPayOwedNamesRemovesHalfWritten(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	whole := strings.TrimPrefix(loadImage(t, s, testimage.Options{Tag: "local/whole:1"}), "sha256:")
	top := mustImage(t, s, whole).TopLayer
	config, err := s.store.ImageBigData(whole, "sha256:"+whole)
	assert.NilError(t, err)
	for round, cut := range []struct {
		lack string
		data []storage.ImageBigDataOption
	}{
		{"config", nil},
		{"manifest", []storage.ImageBigDataOption{{Key: "sha256:" + strings.Repeat("ab", 32), Data: config}}},
		{"config", nil}, // again: a second cut at the same place
	} {
		id := strings.Repeat(fmt.Sprintf("%02x", round+1), 32)
		if cut.data != nil {
			cut.data[0].Key = "sha256:" + id
		}
		_, err := s.store.CreateImage(id, nil, top, "", &storage.ImageOptions{BigData: cut.data})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(s.halfWritten(mustImage(t, s, id)), cut.lack), "round %d", round)
		_, err = s.owe(id, []string{"docker.io/library/cut:latest"})
		assert.NilError(t, err)

		n, err := s.PayOwedNames()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(n, 0), "round %d: a half-written image was named", round)
		_, err = s.store.Image(id)
		assert.Check(t, is.ErrorIs(err, storage.ErrImageUnknown), "round %d: the half-written image is left", round)
		assert.Check(t, is.Len(owedNotes(t, s), 0), "round %d", round)
		img, err := s.Image(ctx, "local/whole:1")
		assert.NilError(t, err, "round %d", round)
		assert.Check(t, is.Equal(img.ID, "sha256:"+whole))
		assert.Check(t, is.Equal(s.halfWritten(mustImage(t, s, whole)), ""))
		_, err = s.store.Layer(top)
		assert.NilError(t, err, "round %d: the whole image's layer went with the cut one", round)
	}
}
