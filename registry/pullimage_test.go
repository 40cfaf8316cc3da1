package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestPullImage: a deployment's pull lands the image, and a missing tag is
// the pull's NotFound, with no stream to read it from.
func TestPullImage(t *testing.T) {
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	ctx := context.Background()
	s, _ := newTestService(t)

	assert.NilError(t, s.PullImage(ctx, reg.Addr+"/library/busybox:latest"))
	img, err := s.Image(ctx, reg.Addr+"/library/busybox:latest")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(img.ID, id))

	err = s.PullImage(ctx, reg.Addr+"/library/busybox:nosuch")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}

// An error message in the stream is the pull's error; progress is dropped.
func TestDiscardOutput(t *testing.T) {
	assert.NilError(t, quiet{}.Send(jsonstream.Message{Status: "Downloading"}))
	assert.NilError(t, quiet{}.Send("anything else"))
	failed := &jsonstream.Error{Message: "unexpected EOF"}
	err := quiet{}.Send(jsonstream.Message{Error: failed})
	assert.Check(t, errors.Is(err, failed), "%v", err)
}
