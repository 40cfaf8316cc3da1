package network

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A build step joins the default bridge with its hostname, and leaves no
// trace.
func TestBuildSandboxes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sb := e.m.BuildSandboxes()

	step := fmt.Sprintf("%064x", time.Now().UnixNano())
	path, err := sb.Join(ctx, step, "buildhost")
	assert.NilError(t, err)
	_, err = os.Stat(path)
	assert.NilError(t, err)
	eps := e.m.records.ByContainer(step)
	assert.Assert(t, is.Len(eps, 1))
	assert.Check(t, is.Equal(eps[0].Hostname, "buildhost"))
	assert.Check(t, eps[0].IP.IsValid())

	assert.NilError(t, sb.Leave(ctx, step))
	_, err = os.Stat(path)
	assert.Check(t, os.IsNotExist(err), "%v", err)
	inv, err := e.m.Inventory(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(inv.Netns, 0))
	assert.Check(t, is.Len(inv.Veths, 0))
	assert.Check(t, is.Equal(inv.Endpoints, 0))
	assert.Check(t, is.Equal(inv.Addresses, 0))
}

// failingAttach records what a Join does when the attach fails.
type failingAttach struct {
	created, deleted []string
	req              AttachRequest
}

func (f *failingAttach) CreateSandbox(ctx context.Context, id string) (string, error) {
	f.created = append(f.created, id)
	return "/run/netns/" + id, nil
}

func (f *failingAttach) Attach(ctx context.Context, nsPath string, req AttachRequest) (*network.EndpointSettings, error) {
	f.req = req
	return nil, errdefs.ErrResourceExhausted.WithMessage("no address left")
}

func (f *failingAttach) DeleteSandbox(ctx context.Context, id string) error {
	f.deleted = append(f.deleted, id)
	return nil
}

// A join whose attach fails removes the namespace it made and returns the
// attach's error, classified as it was.
func TestBuildSandboxJoinFails(t *testing.T) {
	f := &failingAttach{}
	_, err := BuildSandboxes{m: f}.Join(context.Background(), "step1", "buildhost")
	assert.Check(t, errdefs.IsResourceExhausted(err), "%v", err)
	assert.Check(t, is.DeepEqual(f.created, []string{"step1"}))
	assert.Check(t, is.DeepEqual(f.deleted, []string{"step1"}))
	assert.Check(t, is.Equal(f.req.ContainerID, "step1"))
	assert.Check(t, is.Equal(f.req.Hostname, "buildhost"))
	assert.Check(t, is.Equal(f.req.Network, "bridge"))
	assert.Check(t, f.req.Primary)
}
