package integration

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Bad input and faults berthd must survive.

// editRecords changes container records in the metadata store of a stopped
// daemon.
func editRecords(t *testing.T, d *testenv.Daemon, edit func(b *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(d.DataRoot, "berth.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	assert.NilError(t, err)
	defer db.Close()
	assert.NilError(t, db.Update(func(tx *bolt.Tx) error { return edit(tx.Bucket([]byte("containers"))) }))
}

// checkStore runs bbolt's consistency check on a stopped daemon's store.
func checkStore(t *testing.T, d *testenv.Daemon) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(d.DataRoot, "berth.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	assert.NilError(t, err)
	defer db.Close()
	assert.NilError(t, db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}))
}

// Records damaged while berthd was down (garbage, truncated JSON, JSON that
// is no container): berthd starts, shows each as a dead container named
// broken-<id> with the reason, stops what of it still ran, serves the rest,
// and docker rm removes them.
func TestCorruptRecordsAreReportedAndRemovable(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	ids := map[string]string{}
	for _, name := range []string{"good", "garbage", "truncated", "hollow"} {
		ids[name] = strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", name, "busybox", "sleep", "300"))
	}
	d.DockerOK(t, "stop", "-t", "0", "truncated")
	pid, _ := strconv.Atoi(inspectF(t, d, "{{.State.Pid}}", "garbage"))
	d.Kill(t)
	editRecords(t, d, func(b *bolt.Bucket) error {
		rec := b.Get([]byte(ids["truncated"]))
		return errors.Join(
			b.Put([]byte(ids["garbage"]), []byte("\x00\x17garbage{{")),
			b.Put([]byte(ids["truncated"]), append([]byte(nil), rec[:len(rec)/2]...)),
			b.Put([]byte(ids["hollow"]), []byte(`{"Name":"/hollow"}`)),
		)
	})
	d.Start(t)

	ps := d.DockerOK(t, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	assert.Check(t, is.Contains(ps, "good running"))
	for _, name := range []string{"garbage", "truncated", "hollow"} {
		broken := "broken-" + ids[name][:12]
		assert.Check(t, is.Contains(ps, broken+" dead"))
		assert.Check(t, is.Contains(inspectF(t, d, "{{.State.Error}}", broken), "corrupt record"))
	}
	assert.Check(t, !alive(pid), "the container of a broken record still runs")
	// and it holds nothing: one monitor, one rootfs mount, one sandbox (good's)
	inv := d.Inventory(t)
	assert.Check(t, is.Len(inv.Monitors, 1))
	assert.Check(t, is.Len(inv.Netns, 1))
	assert.Check(t, is.Equal(inv.Addresses, 1))
	merged := 0
	for _, m := range inv.Mounts {
		if strings.HasSuffix(m, "/merged") {
			merged++
		}
	}
	assert.Check(t, is.Equal(merged, 1), "mounts: %v", inv.Mounts)
	d.DockerOK(t, "exec", "good", "true")
	d.DockerOK(t, "rm", "broken-"+ids["garbage"][:12], ids["truncated"], "broken-"+ids["hollow"][:12])
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}")), "good")
	for _, name := range []string{"garbage", "truncated", "hollow"} {
		assert.Check(t, is.Len(d.Leftovers(t, ids[name]), 0), name)
	}
	// the rest is served as before, and a new container may take a freed name
	d.DockerOK(t, "run", "--rm", "--name", "garbage", "busybox", "true")
	d.Restart(t, syscall.SIGTERM)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}} {{.State}}")), "good running")
}

// A full data root (a 64 MiB tmpfs, filled): operations that need space
// fail with a clear error, what runs keeps running, the metadata store is
// not damaged (also across a SIGKILL while full), and berthd works again
// once there is space.
func TestFullDataRoot(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.Stop(t)
	small := filepath.Join(d.Root, "small")
	assert.NilError(t, os.MkdirAll(small, 0o711))
	assert.NilError(t, unix.Mount("tmpfs", small, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { _ = unix.Unmount(small, unix.MNT_DETACH) })
	d.DataRoot = small
	d.Start(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "before", "busybox", "sh", "-c", "while :; do echo tick; sleep 0.1; done")
	d.DockerOK(t, "create", "--name", "idle", "busybox", "true")

	filler := filepath.Join(small, "filler")
	fill(t, filler)
	r := d.Docker("run", "-d", "--name", "during", "busybox", "true")
	assert.Check(t, r.ExitCode != 0, "run on a full disk succeeded")
	assert.Check(t, is.Contains(r.Stderr(), "no space left on device"))
	t.Logf("run on a full data root: %s", strings.TrimSpace(r.Stderr()))
	r = d.Docker("volume", "create", "full")
	assert.Check(t, r.ExitCode != 0 || strings.TrimSpace(r.Stdout()) == "full", r.Combined())
	// what there is still works
	assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "before"), "running")
	d.DockerOK(t, "exec", "before", "true")
	d.DockerOK(t, "logs", "before")
	ps := d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}")
	assert.Check(t, is.Contains(ps, "before"))
	assert.Check(t, is.Contains(ps, "idle"))

	// a crash while full loses nothing
	d.Kill(t)
	checkStore(t, d)
	d.Start(t)
	assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "before"), "running")
	d.DockerOK(t, "stop", "-t", "0", "before") // its exit is recorded even with no space left, or in memory at least
	assert.Equal(t, inspectF(t, d, "{{.State.Status}}", "before"), "exited")

	assert.NilError(t, os.Remove(filler))
	d.DockerOK(t, "start", "before")
	d.DockerOK(t, "run", "--name", "after", "busybox", "echo", "space")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "logs", "after")), "space")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if out := d.DockerOK(t, "logs", "--tail", "1", "before"); strings.TrimSpace(out) != "tick" {
			return poll.Continue("before logs %q", out)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	d.Stop(t)
	checkStore(t, d)
	d.Start(t)
	ps = d.DockerOK(t, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	for _, want := range []string{"before running", "idle created", "after exited"} {
		assert.Check(t, is.Contains(ps, want))
	}
}

// fill writes path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	assert.NilError(t, err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			assert.Assert(t, errors.Is(err, syscall.ENOSPC), err)
			return
		}
	}
}
