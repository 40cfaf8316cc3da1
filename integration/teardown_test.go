package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Container teardown (issue 17, "Bulk removal"): a --rm container's root
// filesystem is volatile (registry/rootfs.go). Whatever the way containers
// go, nothing of them stays: no mount under the daemon's roots, no layer or
// storage container without a container, no state directory, no record.

// teardownIdle is what a daemon holds with no container: its mounts under
// the data and exec roots and its layer store.
type teardownIdle struct {
	mounts  []string
	storage testenv.StorageState
}

func idleOf(t *testing.T, d *testenv.Daemon) teardownIdle {
	t.Helper()
	d.SettleRemovals(t)
	return teardownIdle{mounts: daemonMounts(d), storage: d.Storage(t)}
}

// daemonMounts are the mount points under the daemon's roots, but the exec
// root's netns directory (mounted once, at the first container, and kept).
func daemonMounts(d *testenv.Daemon) []string {
	out := []string{}
	for _, m := range append(testenv.MountsUnder(d.DataRoot), testenv.MountsUnder(d.ExecRoot)...) {
		if !strings.HasPrefix(m, filepath.Join(d.ExecRoot, "netns")) {
			out = append(out, m)
		}
	}
	return out
}

// checkNothingLeft asserts that the daemon holds for containers no more
// than idle: mounts, storage containers and their layers, layer
// directories, container and monitor state directories. The layer store is
// read from its files (nothing may be in flight).
func checkNothingLeft(t *testing.T, d *testenv.Daemon, idle teardownIdle, where string) {
	t.Helper()
	d.SettleRemovals(t)
	assert.Check(t, is.DeepEqual(daemonMounts(d), idle.mounts), "%s: mounts", where)
	st := d.Storage(t)
	assert.Check(t, is.Equal(st.Containers, 0), "%s: storage containers without a container", where)
	assert.Check(t, is.Len(st.Unreferenced, 0), "%s: layers nobody uses", where)
	assert.Check(t, is.Equal(st.Layers, idle.storage.Layers), "%s: layers", where)
	assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "%s: layer directories without a layer", where)
	for _, dir := range []string{filepath.Join(d.DataRoot, "containers"), filepath.Join(d.ExecRoot, "c")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if len(e.Name()) >= 24 && !strings.Contains(e.Name(), ".") {
				t.Errorf("%s: state of a container left: %s", where, filepath.Join(dir, e.Name()))
			}
		}
	}
}

// checkNoRecords stops the daemon and asserts its store holds no container.
func checkNoRecords(t *testing.T, d *testenv.Daemon, where string) {
	t.Helper()
	d.Stop(t)
	counts := storeCounts(t, d, "containers", "endpoints")
	assert.Check(t, is.DeepEqual(counts, map[string]int{"containers": 0, "endpoints": 0}), where)
}

// parallelDocker runs n docker commands, at most 4 at once, and fails the
// test with the first error; it returns each command's stdout.
func parallelDocker(t *testing.T, d *testenv.Daemon, n int, args func(i int) []string) []string {
	t.Helper()
	out := make([]string, n)
	errs := make(chan string, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := d.Docker(args(i)...)
			if r.ExitCode != 0 {
				errs <- r.Combined()
				return
			}
			out[i] = strings.TrimSpace(r.Stdout())
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	return out
}

// 50 `docker run --rm`, then `rm -f` of 50 running containers: the CLI
// returns when each is gone from every list, and then nothing of them is
// left.
func TestRunRmAndRmFLeaveNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--rm", "busybox", "true") // mounts the netns directory
	idle := idleOf(t, d)

	const n = 50
	parallelDocker(t, d, n, func(i int) []string {
		// half of them write: a volatile layer with something in it
		if i%2 == 0 {
			return []string{"run", "--rm", "busybox", "sh", "-c", "echo x > /tmp/x && sync"}
		}
		return []string{"run", "--rm", "busybox", "true"}
	})
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), ""))
	checkNothingLeft(t, d, idle, "after run --rm x 50")

	ids := parallelDocker(t, d, n, func(i int) []string {
		return []string{"run", "-d", "--name", fmt.Sprintf("bulk%d", i), "busybox", "sleep", "600"}
	})
	start := time.Now()
	d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
	t.Logf("rm -f of %d: %v", n, time.Since(start))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), ""))
	waitEmpty(t, d) // monitors end after their grace
	checkNothingLeft(t, d, idle, "after rm -f of 50")
	checkNoRecords(t, d, "after rm -f of 50")
}

// berthd SIGKILLed while one `docker rm -f` removes 30 containers: after
// the restart each container is gone with everything it had, listed whole,
// or listed dead (its removal was cut after the root filesystem went, as
// dockerd shows such a cut); all of them are removable, and after that
// nothing is left.
func TestKillDuringBulkRemoval(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	defer logRestores(t, d)
	d.DockerOK(t, "run", "--rm", "busybox", "true")
	idle := idleOf(t, d)

	const n = 30
	ids := parallelDocker(t, d, n, func(i int) []string {
		if i%3 == 0 { // some --rm ones: their layers are volatile
			return []string{"run", "-d", "--rm", "busybox", "sleep", "600"}
		}
		return []string{"run", "-d", "busybox", "sleep", "600"}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Docker(append([]string{"rm", "-f"}, ids...)...)
	}()
	// kill once the removal is under way: the first container is gone
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if left := len(strings.Fields(d.Docker("ps", "-aq").Stdout())); left < n {
			return poll.Success()
		}
		return poll.Continue("no container removed yet")
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(10*time.Millisecond))
	d.Kill(t)
	<-done
	d.Start(t)

	left := strings.Fields(d.DockerOK(t, "ps", "-aq", "--no-trunc"))
	// a removal cut after its root filesystem went and before its record
	// did leaves a dead container (dockerd's answer to the same cut): it
	// says why, and rm finishes it
	dead := strings.Fields(d.DockerOK(t, "ps", "-aq", "--no-trunc", "--filter", "status=dead"))
	t.Logf("%d of %d containers left after the SIGKILL, %d dead", len(left), n, len(dead))
	assert.Check(t, len(left) < n)
	for _, id := range dead {
		assert.Check(t, is.Contains(inspectF(t, d, "{{.State.Error}}", id), "a removal was interrupted"), id)
	}
	// every other one is whole: its root filesystem is in the store
	st := d.Storage(t)
	assert.Check(t, is.Equal(st.Containers, len(left)-len(dead)), "storage containers vs containers listed")
	assert.Check(t, is.Len(st.Unreferenced, 0), "layers nobody uses")
	assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "layer directories without a layer")
	if len(left) > 0 {
		d.DockerOK(t, append([]string{"rm", "-f"}, left...)...)
	}
	waitEmpty(t, d)
	checkNothingLeft(t, d, idle, "after the restart and rm -f of the rest")
	checkNoRecords(t, d, "after the restart")
}

// A name is free again once the removal that held it answered: a `run --rm
// --name x` right after the previous one finished, `rm` then `create` with
// the same name, 20 times each; and `docker wait` of a removed container
// answers as Docker's does.
func TestNameReusedAfterRemoval(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	for i := range 20 {
		out := d.DockerOK(t, "run", "--rm", "--name", "again", "busybox", "echo", fmt.Sprint(i))
		assert.Check(t, is.Equal(strings.TrimSpace(out), fmt.Sprint(i)))
	}
	id := strings.TrimSpace(d.DockerOK(t, "create", "--name", "same", "busybox", "true"))
	for i := range 20 {
		d.DockerOK(t, "rm", "same")
		next := strings.TrimSpace(d.DockerOK(t, "create", "--name", "same", "busybox", "true"))
		assert.Assert(t, next != id, "iteration %d: a new container", i)
		id = next
	}

	// docker wait of a container removed before: "No such container", exit 1
	d.DockerOK(t, "rm", "same")
	for _, ref := range []string{"same", id, id[:12]} {
		r := d.Docker("wait", ref)
		assert.Check(t, is.Equal(r.ExitCode, 1), ref)
		assert.Check(t, is.Contains(r.Stderr(), "No such container: "+ref), ref)
	}
	// the API's answer to a wait on a removed container, any condition: 404
	for _, cond := range []string{"", "not-running", "next-exit", "removed"} {
		resp, body := waitRequest(t, d, id, cond)
		assert.Check(t, is.Equal(resp.StatusCode, http.StatusNotFound), cond)
		assert.Check(t, is.Contains(body, "No such container: "+id), cond)
	}

	// a wait registered before `rm -f` kills the container answers its
	// exit code (137), as Docker's does; a condition=removed one too
	d.DockerOK(t, "run", "-d", "--name", "waited", "busybox", "sleep", "600")
	type answer struct {
		cond string
		body string
	}
	answers := make(chan answer, 2)
	for _, cond := range []string{"not-running", "removed"} {
		resp, err := waitStart(d, "waited", cond) // returns once the headers came: the wait is registered
		assert.NilError(t, err)
		assert.Check(t, is.Equal(resp.StatusCode, http.StatusOK), cond)
		go func() {
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- answer{cond, strings.TrimSpace(string(b))}
		}()
	}
	d.DockerOK(t, "rm", "-f", "waited")
	for range 2 {
		select {
		case a := <-answers:
			assert.Check(t, is.Equal(a.body, `{"StatusCode":137}`), a.cond)
		case <-time.After(60 * time.Second):
			t.Fatal("a wait did not answer after rm -f")
		}
	}
	// and the name is free at once
	d.DockerOK(t, "run", "--rm", "--name", "waited", "busybox", "true")
}

// waitStart sends POST /containers/{ref}/wait and returns the response
// once its headers arrived (the daemon sends them when the wait is set up).
func waitStart(d *testenv.Daemon, ref, cond string) (*http.Response, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Sock)
	}}}
	u := "http://berth/containers/" + ref + "/wait"
	if cond != "" {
		u += "?condition=" + cond
	}
	return c.Post(u, "application/json", nil)
}

// waitRequest is a whole wait request: its response and body.
func waitRequest(t *testing.T, d *testenv.Daemon, ref, cond string) (*http.Response, string) {
	t.Helper()
	resp, err := waitStart(d, ref, cond)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp, string(b)
}

// What a script does after `docker run --rm`, at once and again: the
// image can be removed, the name taken again, the anonymous volume is
// gone. The removal is answered before the root filesystem's deletion
// (registry/rootfsremoval.go), which none of this may see.
func TestRunRmThenReuse(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	idle := idleOf(t, d)
	d.DockerOK(t, "create", "--name", "base", "busybox")
	for i := range 5 {
		img := fmt.Sprintf("once%d", i)
		d.DockerOK(t, "commit", "-c", "ENV I="+img, "base", img) // an image of its own
		out := d.DockerOK(t, "run", "--rm", "--name", "same", "-v", "/data", img, "sh", "-c", "echo $I > /data/x && cat /data/x")
		assert.Check(t, is.Equal(strings.TrimSpace(out), img))
		d.DockerOK(t, "rmi", img) // not "image is being used by stopped container"
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "volume", "ls", "-q")), ""), "round %d", i)
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq", "--filter", "name=same")), ""), "round %d", i)
	}
	d.DockerOK(t, "rm", "base")
	checkNothingLeft(t, d, idle, "after the rounds")
}

// berthd SIGKILLed among `docker run --rm`s, whose removals are answered
// before their root filesystems, files and records go: after the restart
// no container whose CLI saw it removed is back, the ones cut mid-run go
// too, and nothing of any of them is left. Wherever the kill falls.
func TestKillAmongRunRm(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--rm", "busybox", "true") // mounts the netns directory
	idle := idleOf(t, d)
	rnd := seeded(t)
	for round := range 4 {
		var mu sync.Mutex
		var removed []string // the names whose `run --rm` returned 0
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("k%d-%d-%d", round, w, i)
					if d.Docker("run", "--rm", "--name", name, "busybox", "true").ExitCode == 0 {
						mu.Lock()
						removed = append(removed, name)
						mu.Unlock()
					}
				}
			}()
		}
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			mu.Lock()
			defer mu.Unlock()
			if len(removed) >= 2 {
				return poll.Success()
			}
			return poll.Continue("%d runs done", len(removed))
		}, poll.WithTimeout(60*time.Second), poll.WithDelay(10*time.Millisecond))
		time.Sleep(time.Duration(rnd.Intn(300)) * time.Millisecond)
		d.Kill(t)
		close(stop)
		wg.Wait()
		d.Start(t)

		names := strings.Fields(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"))
		mu.Lock()
		for _, n := range removed {
			assert.Check(t, !slices.Contains(names, n), "round %d: %s was answered removed and is back", round, n)
		}
		t.Logf("round %d: %d runs answered before the kill, %d containers after the restart", round, len(removed), len(names))
		mu.Unlock()
		// one cut while `true` ran is adopted, and removed when it exits
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if out := strings.TrimSpace(d.DockerOK(t, "ps", "-aq")); out != "" {
				return poll.Continue("containers left: %s", out)
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second), poll.WithDelay(50*time.Millisecond))
		checkNothingLeft(t, d, idle, fmt.Sprintf("round %d", round))
		if t.Failed() {
			return
		}
	}
	checkNoRecords(t, d, "after the rounds")
}
