package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The restore of a running container adopts its root filesystem's mount
// (issue 17, "Restart with the API served during the restore"): the mount
// outlives berthd's SIGKILL, so the restore neither mounts again (no
// "rootfs mount" step in the phase trace) nor adds to the store's mount
// count. Three restarts in a row leave each count at 1 and each root
// filesystem mounted once; a mount that vanished while berthd was down
// (unmounted by hand) is made again with a count of 1; stop and rm then
// leave no mount and no count.
func TestRestoreAdoptsRootfsMounts(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	names := []string{"m1", "m2", "m3"}
	ids := map[string]string{}
	for _, name := range names {
		ids[name] = strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", name, "busybox", "sleep", "600"))
	}
	checkMounts := func(where string) map[string]storeMount {
		t.Helper()
		mounts := storeMounts(t, d)
		for _, name := range names {
			m := mounts[ids[name]]
			assert.Check(t, is.Equal(m.Count, 1), "%s: %s's mount count", where, name)
			assert.Check(t, is.Equal(mountedTimes(m.Path), 1), "%s: %s's root filesystem at %q", where, name, m.Path)
		}
		return mounts
	}
	before := checkMounts("before the restarts")
	rootfsMounts := func() int { return strings.Count(d.Log(), `phase="rootfs mount"`) }

	for round := 1; round <= 3; round++ {
		mounted := rootfsMounts()
		d.Restart(t, syscall.SIGKILL)
		assert.Check(t, is.Equal(rootfsMounts(), mounted), "round %d: the restore mounted a root filesystem again", round)
		after := checkMounts("after a restart")
		for _, name := range names {
			assert.Check(t, is.Equal(after[ids[name]].Path, before[ids[name]].Path), "round %d: %s", round, name)
		}
		d.DockerOK(t, "exec", names[round-1], "true")
	}

	// a mount gone while berthd is down: made again, counted once
	d.Kill(t)
	gone := before[ids["m2"]].Path
	assert.NilError(t, unix.Unmount(gone, unix.MNT_DETACH))
	assert.Check(t, is.Equal(mountedTimes(gone), 0))
	mounted := rootfsMounts()
	d.Start(t)
	assert.Check(t, is.Equal(rootfsMounts(), mounted+1), "the vanished mount was not made again")
	checkMounts("after the vanished mount's restart")
	assert.Check(t, is.Equal(inspectF(t, d, "{{.State.Status}}", "m2"), "running"))
	d.DockerOK(t, "exec", "m2", "true")
	d.DockerOK(t, "cp", "m2:/bin/busybox", filepath.Join(t.TempDir(), "bb")) // its root filesystem is usable

	d.DockerOK(t, "stop", "-t", "0", "m1")
	assert.Check(t, is.Equal(mountedTimes(before[ids["m1"]].Path), 0), "stop left m1's root filesystem mounted")
	_, counted := storeMounts(t, d)[ids["m1"]]
	assert.Check(t, !counted, "stop left m1's mount counted")
	d.DockerOK(t, "rm", "-f", "m1", "m2", "m3")
	for _, name := range names {
		assert.Check(t, is.Equal(mountedTimes(before[ids[name]].Path), 0), "%s's root filesystem is still mounted", name)
	}
	assert.Check(t, is.Len(storeMounts(t, d), 0))
	waitEmpty(t, d)
	logRestores(t, d)
}

// storeMount is one of containers/storage's mount records
// (mountpoints.json in the run root).
type storeMount struct {
	Path  string `json:"path"`
	Count int    `json:"count"`
}

// storeMounts are the store's mount records by container ID.
func storeMounts(t *testing.T, d *testenv.Daemon) map[string]storeMount {
	t.Helper()
	var mounts []struct {
		ID string `json:"id"`
		storeMount
	}
	b, err := os.ReadFile(filepath.Join(d.ExecRoot, "storage", "overlay-layers", "mountpoints.json"))
	if !os.IsNotExist(err) {
		assert.NilError(t, err)
		assert.NilError(t, json.Unmarshal(b, &mounts))
	}
	var ctrs []struct {
		ID    string `json:"id"`
		Layer string `json:"layer"`
	}
	for _, f := range []string{"containers.json", "volatile-containers.json"} {
		b, err := os.ReadFile(filepath.Join(d.DataRoot, "storage", "overlay-containers", f))
		if os.IsNotExist(err) {
			continue
		}
		assert.NilError(t, err)
		var cs []struct {
			ID    string `json:"id"`
			Layer string `json:"layer"`
		}
		assert.NilError(t, json.Unmarshal(b, &cs))
		ctrs = append(ctrs, cs...)
	}
	byLayer := map[string]string{}
	for _, c := range ctrs {
		byLayer[c.Layer] = c.ID
	}
	out := map[string]storeMount{}
	for _, m := range mounts {
		id := byLayer[m.ID]
		if id == "" {
			id = "layer " + m.ID
		}
		out[id] = m.storeMount
	}
	return out
}

// mountedTimes is how often dir is a mount point in the host's mount table.
func mountedTimes(dir string) int {
	n := 0
	for _, m := range testenv.MountsUnder(dir) {
		if m == dir {
			n++
		}
	}
	return n
}
