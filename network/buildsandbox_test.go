package network

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A build step joins the default bridge with its hostname and leaves no
// trace; a join whose attach fails removes the namespace it made.
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

	// a second step whose name is taken on the bridge: the attach fails
	// (a step's name is its id) and its namespace goes with it
	taken := e.start(t, step[:20])
	e.attach(t, taken, "bridge", true)
	other := step[:20]
	_, err = sb.Join(ctx, other, "buildhost")
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Check(t, is.Len(e.m.records.ByContainer(other), 0))
	_, err = os.Stat(filepath.Join(e.m.nsDir, other))
	assert.Check(t, os.IsNotExist(err), "%v", err)
	assert.NilError(t, e.m.DeleteSandbox(ctx, taken.id))

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
