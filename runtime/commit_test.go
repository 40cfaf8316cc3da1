package runtime

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCommit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	resp, err := h.s.Create(ctx, CreateRequest{Name: "src", Config: &container.Config{
		Image: "busybox", Cmd: []string{"sh", "-c", "echo hi"}, Env: []string{"KEEP=1"}, Labels: map[string]string{"ctr": "1"},
	}})
	assert.NilError(t, err)

	id, err := h.s.Commit(ctx, "src", CommitOptions{Repo: "docker.io/library/snap", Tag: "v1", Comment: "msg", Changes: []string{"ENV A=$KEEP", `CMD ["run"]`}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id, "sha256:"+strings.Repeat("c", 64)))
	assert.Assert(t, is.Len(h.imgs.commits, 1))
	req := h.imgs.commits[0]
	assert.Check(t, is.Equal(req.ContainerID, resp.ID))
	assert.Check(t, is.DeepEqual(req.Config.Cmd, []string{"run"}))
	assert.Check(t, is.DeepEqual(req.Config.Env, []string{"KEEP=1", "PATH=/bin", "A=1"}))
	assert.Check(t, is.Equal(req.Config.Labels["ctr"], "1"))
	assert.Check(t, is.Equal(req.CreatedBy, "sh -c echo hi"))
	assert.Check(t, is.Contains(h.ev.actions(resp.ID), "commit"))

	// the container's own config is not touched by the changes
	ins, err := h.s.Inspect(ctx, "src", false)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(ins.Config.Cmd, []string{"sh", "-c", "echo hi"}))

	_, err = h.s.Commit(ctx, "src", CommitOptions{Changes: []string{"RUN make"}})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = h.s.Commit(ctx, "nosuch", CommitOptions{})
	assert.Check(t, errdefs.IsNotFound(err))
}
