package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// statuses are the status lines of a recorded stream.
func statuses(out *recordOutput) string {
	var b strings.Builder
	for _, m := range out.msgs {
		if jm, ok := m.(jsonstream.Message); ok {
			fmt.Fprintf(&b, "%s %s\n", jm.ID, jm.Status)
		}
	}
	return b.String()
}

// TestPullCredentials: request credentials first, then the daemon's auth
// file, else anonymous.
func TestPullCredentials(t *testing.T) {
	reg := testenv.StartRegistry(t, true)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	ref := reg.Addr + "/library/busybox"
	ctx := context.Background()

	s, _ := newTestService(t)
	s.d.AuthFile = filepath.Join(t.TempDir(), "missing.json")
	started := false
	err := s.Pull(ctx, PullOptions{FromImage: ref}, func() Output { started = true; return &recordOutput{} })
	assert.Check(t, errdefs.IsPermissionDenied(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "authentication required"))
	assert.Check(t, !started)

	err = s.Pull(ctx, PullOptions{FromImage: ref, Auth: &mregistry.AuthConfig{Username: reg.User, Password: "wrong"}}, func() Output { return &recordOutput{} })
	assert.Check(t, errdefs.IsPermissionDenied(err), "%v", err)

	start, out := memOut()
	assert.NilError(t, s.Pull(ctx, PullOptions{FromImage: ref, Auth: &mregistry.AuthConfig{Username: reg.User, Password: reg.Password}}, start))
	assert.Check(t, is.Contains(statuses(out), " Pull complete"))
	img, err := s.Image(ctx, ref)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(img.ID, id))
	assert.Check(t, is.Len(img.RepoDigests, 1))

	// the daemon's ~/.docker/config.json-style file
	s2, _ := newTestService(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Addr: map[string]string{"auth": auth}}})
	assert.NilError(t, os.WriteFile(cfg, b, 0o600))
	s2.d.AuthFile = cfg
	start, out = memOut()
	assert.NilError(t, s2.Pull(ctx, PullOptions{FromImage: ref, Tag: "latest"}, start))
	assert.Check(t, is.Contains(statuses(out), "Status: Downloaded newer image for "+ref+":latest"))

	// login
	_, err = s2.Login(ctx, mregistry.AuthConfig{Username: reg.User, Password: "wrong", ServerAddress: reg.Addr})
	assert.Check(t, errdefs.IsUnauthorized(err), "%v", err)
	resp, err := s2.Login(ctx, mregistry.AuthConfig{Username: reg.User, Password: reg.Password, ServerAddress: "http://" + reg.Addr + "/v2/"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resp.Status, "Login Succeeded"))
}

func TestPullPlatform(t *testing.T) {
	s, _ := newTestService(t)
	err := s.Pull(context.Background(), PullOptions{FromImage: "busybox", Platform: "a/b/c/d"}, nil)
	assert.Check(t, errdefs.IsInvalidArgument(err))
}
