package inventory

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fakeNet struct{}

func (fakeNet) Inventory(ctx context.Context) (*NetworkState, error) {
	return &NetworkState{Veths: []string{"vb1", "vb2"}, Endpoints: 2, Addresses: 2}, nil
}

type fakeCounter struct{}

func (fakeCounter) Counts() (int, int, int, int) { return 3, 2, 0, 1 }

func TestNewChecksDeps(t *testing.T) {
	_, err := New(Deps{DataRoot: "/d"})
	assert.ErrorContains(t, err, "required")
}

func TestInventory(t *testing.T) {
	root := t.TempDir()
	data, exec := filepath.Join(root, "data"), filepath.Join(root, "run")
	mnt := filepath.Join(data, "mnt")
	assert.NilError(t, os.MkdirAll(mnt, 0o755))
	assert.NilError(t, os.MkdirAll(exec, 0o755))
	if os.Geteuid() == 0 {
		assert.NilError(t, unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"))
		defer unix.Unmount(mnt, unix.MNT_DETACH)
	}
	tk, err := New(Deps{DataRoot: data, ExecRoot: exec, CgroupParent: "berth-inventory-test", MonitorBinary: "berth-shim", Network: fakeNet{}, Containers: fakeCounter{}})
	assert.NilError(t, err)
	r, err := tk.Inventory(context.Background())
	assert.NilError(t, err)
	if os.Geteuid() == 0 {
		assert.Check(t, is.DeepEqual(r.Mounts, []string{mnt}))
	}
	assert.Check(t, is.DeepEqual(r.Veths, []string{"vb1", "vb2"}))
	assert.Check(t, is.Equal(r.Addresses, 2))
	assert.Check(t, is.Len(r.Monitors, 0))
	assert.Check(t, is.Len(r.Cgroups, 0))
	assert.Check(t, is.DeepEqual(r.Containers, Containers{Total: 3, Running: 2, Stopped: 1}))
	assert.Check(t, r.FDs > 0 && r.Goroutines > 0 && r.RSSBytes > 0)
	assert.Check(t, r.Netns != nil && r.Rules != nil, "lists are [] in JSON, never null")
}
