package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// storeCounts are the records in a stopped daemon's store, by bucket.
func storeCounts(t *testing.T, d *testenv.Daemon, buckets ...string) map[string]int {
	t.Helper()
	db, err := bolt.Open(filepath.Join(d.DataRoot, "berth.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	assert.NilError(t, err)
	defer db.Close()
	out := map[string]int{}
	assert.NilError(t, db.View(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if b := tx.Bucket([]byte(name)); b != nil {
				out[name] = b.Stats().KeyN
			}
		}
		return nil
	}))
	return out
}

// 30 running containers with a published port each, on a user network,
// removed by one `docker rm -f` (the CLI sends the 30 DELETEs at once):
// nothing is left — addresses, endpoints, DNS records, veths, iptables
// rules, held ports, mounts, monitors, cgroups, store records — and a
// daemon restarted afterwards shows the same.
func TestThirtyRemovedAtOnceLeaveNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "bulk")
	// one container first: the exec root's netns directory is mounted once,
	// at the first, and stays
	d.DockerOK(t, "run", "--rm", "--network", "bulk", "busybox", "true")
	var idle testenv.Held
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		idle = testenv.HeldOf(d.Inventory(t))
		if idle.Veths+idle.Netns+idle.Monitors+idle.Endpoints+idle.Addresses > 0 {
			return poll.Continue("the first container's leftovers are going: %+v", idle)
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(100*time.Millisecond))

	const n = 30
	ids := parallelDocker(t, d, n, func(i int) []string {
		return []string{"run", "-d", "--name", fmt.Sprintf("b%d", i), "--network", "bulk", "-p", "127.0.0.1::80", "busybox", "sleep", "600"}
	})
	running := testenv.HeldOf(d.Inventory(t))
	assert.Check(t, is.Equal(running.Endpoints-idle.Endpoints, n))
	assert.Check(t, is.Equal(running.Ports-idle.Ports, n))
	assert.Check(t, running.Rules > idle.Rules, "published ports add rules")

	start := time.Now()
	d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
	t.Logf("rm -f of %d: %v", n, time.Since(start))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), ""))
	d.WaitHeld(t, idle, 20*time.Second)

	// the records went with them
	d.Stop(t)
	counts := storeCounts(t, d, "containers", "endpoints", "ports")
	assert.Check(t, is.DeepEqual(counts, map[string]int{"containers": 0, "endpoints": 0, "ports": 0}))

	// and a restarted daemon finds nothing of them either
	d.Start(t)
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), ""))
	got := testenv.HeldOf(d.Inventory(t))
	// the exec root's netns directory was unmounted by the idle daemon's
	// stop and is mounted again at the next container
	assert.Check(t, got.Mounts <= idle.Mounts, "mounts after the restart: %d, idle: %d", got.Mounts, idle.Mounts)
	got.Mounts = idle.Mounts
	assert.Check(t, is.DeepEqual(got, idle))
	// their addresses are free: 30 new containers get the same ones
	d.DockerOK(t, "run", "-d", "--name", "after", "--network", "bulk", "busybox", "sleep", "600")
	ip := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.Networks.bulk.IPAddress}}", "after"))
	assert.Check(t, strings.HasSuffix(ip, ".2"), "the first address of the subnet is free again, got %s", ip)
}
