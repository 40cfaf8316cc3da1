package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// SIGKILL of berthd in the middle of work: after a restart `docker ps -a`
// tells the truth and nothing is left half-made. Kill moments are random
// (the seed is logged); every iteration is checked.

func seeded(t *testing.T) *rand.Rand {
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewSource(seed))
}

// checkTruthful: every container ps -a calls running runs (its pid is
// alive), the others hold nothing (monitor, cgroup, mounts, sandbox), and
// the daemon holds exactly what its running containers need; no root
// filesystem or layer in the store belongs to nobody.
func checkTruthful(t *testing.T, d *testenv.Daemon, where string) {
	t.Helper()
	out := d.DockerOK(t, "ps", "-aq", "--no-trunc")
	ids := strings.Fields(out)
	running, ports := 0, 0
	for _, id := range ids {
		f := strings.Fields(inspectF(t, d, "{{.State.Status}} {{.State.Pid}} {{len .NetworkSettings.Ports}}", id))
		if f[0] == "running" {
			running++
			var pid int
			fmt.Sscan(f[1], &pid)
			assert.Check(t, alive(pid), "%s: %s is running with pid %d, which is gone", where, id[:12], pid)
			if f[2] != "0" {
				ports++
			}
			continue
		}
		for _, l := range d.Leftovers(t, id) {
			if !strings.HasPrefix(l, "state dir") { // an exited container keeps its monitor's state dir until it is started again or removed
				t.Errorf("%s: %s is %s but left %s", where, id[:12], f[0], l)
			}
		}
	}
	t.Logf("%s: %d containers, %d running", where, len(ids), running)
	inv := d.Inventory(t)
	merged := 0
	for _, m := range inv.Mounts {
		if strings.HasSuffix(m, "/merged") {
			merged++
		}
	}
	got := testenv.Held{Monitors: len(inv.Monitors), Cgroups: len(inv.Cgroups), Veths: len(inv.Veths), Netns: len(inv.Netns),
		Endpoints: inv.Endpoints, Addresses: inv.Addresses, Ports: len(inv.Ports), Mounts: merged}
	want := testenv.Held{Monitors: running, Cgroups: running, Veths: running, Netns: running,
		Endpoints: running, Addresses: running, Ports: ports, Mounts: running}
	if got != want {
		// a monitor of a container that exited just now goes once its
		// grace period (5 s) is over and the shim has run: wait for that
		// rather than for a guess of how long a loaded machine takes
		deadline := time.Now().Add(30 * time.Second)
		for got != want && got.Monitors > want.Monitors && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			inv = d.Inventory(t)
			got.Monitors = len(inv.Monitors)
		}
	}
	assert.Check(t, is.Equal(got, want), "%s: the daemon holds more or less than its %d running containers need: %+v", where, running, inv)
	d.SettleRemovals(t)
	st := d.Storage(t)
	assert.Check(t, is.Len(st.Unreferenced, 0), "%s: layers nobody uses", where)
	assert.Check(t, is.Equal(st.Containers, len(ids)), "%s: root filesystems without a container", where)
	assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "%s: layer directories without a layer", where)
}

// SIGKILL while `docker run`s are in flight (three at once, with and
// without a published port), at random moments.
func TestKillDuringRun(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	defer logRestores(t, d)
	rnd := seeded(t)
	for i := 0; i < 8; i++ {
		var wg sync.WaitGroup
		for j := 0; j < 3; j++ {
			args := []string{"run", "-d", "--name", fmt.Sprintf("r%d-%d", i, j)}
			if j == 0 {
				args = append(args, "-p", "127.0.0.1::80")
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.Docker(append(args, "busybox", "sleep", "300")...)
			}()
		}
		// odd iterations kill at a random moment from the start (maybe
		// before any request arrives); even ones once this iteration's
		// first container exists, so a slow machine kills runs in flight
		// too
		if i%2 == 0 {
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if strings.Contains(d.Docker("ps", "-a", "--format", "{{.Names}}").Stdout(), fmt.Sprintf("r%d-", i)) {
					return poll.Success()
				}
				return poll.Continue("no container of iteration %d yet", i)
			}, poll.WithTimeout(60*time.Second), poll.WithDelay(10*time.Millisecond))
		}
		time.Sleep(time.Duration(rnd.Intn(400)) * time.Millisecond)
		d.Kill(t)
		wg.Wait()
		d.Start(t)
		checkTruthful(t, d, fmt.Sprintf("iteration %d", i))
		if t.Failed() {
			return
		}
	}
	if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
		d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
	}
	waitEmpty(t, d)
}

// logRestores logs what each daemon start found.
func logRestores(t *testing.T, d *testenv.Daemon) {
	for _, l := range strings.Split(d.Log(), "\n") {
		if i := strings.Index(l, "msg=\"restored"); i >= 0 {
			t.Log(l[i+5:])
		}
	}
}

// waitEmpty waits until the daemon holds nothing for containers.
func waitEmpty(t *testing.T, d *testenv.Daemon) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		inv := d.Inventory(t)
		merged := 0
		for _, m := range inv.Mounts {
			if strings.HasSuffix(m, "/merged") {
				merged++
			}
		}
		if n := len(inv.Monitors) + len(inv.Cgroups) + len(inv.Veths) + len(inv.Netns) + inv.Endpoints + inv.Addresses + len(inv.Ports) + merged; n > 0 {
			return poll.Continue("still held: %+v", inv)
		}
		return poll.Success()
	}, poll.WithTimeout(15*time.Second), poll.WithDelay(200*time.Millisecond))
}

// SIGKILL during `docker compose up` at random moments: afterwards the
// state is truthful, `up` converges again and `down` leaves nothing.
func TestKillDuringComposeUp(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.InstallCompose(t)
	dir := t.TempDir()
	b, err := os.ReadFile("/work/shared/anchors/compose-bench/compose.yaml")
	assert.NilError(t, err)
	file := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(file, b, 0o644))
	baseline := d.Inventory(t)
	rnd := seeded(t)
	for i := 0; i < 4; i++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Compose("-p", "bench", "-f", file, "up", "-d")
		}()
		time.Sleep(time.Duration(100+rnd.Intn(900)) * time.Millisecond)
		d.Kill(t)
		<-done
		d.Start(t)
		checkTruthful(t, d, fmt.Sprintf("iteration %d", i))
		d.ComposeOK(t, "-p", "bench", "-f", file, "up", "-d")
		out := d.ComposeOK(t, "-p", "bench", "-f", file, "ps", "--format", "{{.Service}} {{.State}}")
		assert.Check(t, is.Equal(strings.Count(out, "running"), 3), out)
		d.ComposeOK(t, "-p", "bench", "-f", file, "down", "-t", "0")
		waitEmpty(t, d)
		inv := d.Inventory(t)
		assert.Check(t, is.DeepEqual(inv.Rules, baseline.Rules), "iteration %d: iptables rules", i)
		assert.Check(t, is.DeepEqual(inv.Bridges, baseline.Bridges), "iteration %d: bridges", i)
		assert.Check(t, is.Equal(inv.DNSRecords, baseline.DNSRecords), "iteration %d: DNS records", i)
		if t.Failed() {
			return
		}
	}
}

// SIGKILL during a pull of a 64 MiB image from a local registry, at random
// moments: no half-written image (it is there whole or not at all), no
// layer or layer directory left that no image uses; the pull then works.
func TestKillDuringPull(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BigImageArchive(t, "big:latest", 4, 16<<20, 7)
	reg.Push(t, archive, "big/img:latest")
	ref := reg.Addr + "/big/img:latest"
	d := testenv.StartDaemon(t)
	t0 := time.Now()
	d.DockerOK(t, "pull", "-q", ref)
	full := time.Since(t0)
	t.Logf("a whole pull takes %v", full)
	d.DockerOK(t, "rmi", ref)
	rnd := seeded(t)
	for i := 0; i < 5; i++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Docker("pull", "-q", ref)
		}()
		time.Sleep(full/10 + time.Duration(rnd.Int63n(int64(full*8/10))))
		d.Kill(t)
		<-done
		d.Start(t)
		st := d.Storage(t)
		assert.Check(t, is.Len(st.Unreferenced, 0), "iteration %d: layers of the cut pull are left: %+v", i, st)
		assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "iteration %d: layer directories without a layer: %+v", i, st)
		tmp, _ := os.ReadDir(filepath.Join(d.DataRoot, "storage", "overlay", "tempdirs"))
		assert.Check(t, is.Len(tmp, 0), "iteration %d: staging directories left", i)
		r := d.Docker("image", "inspect", "-f", "{{.Id}} {{len .RootFS.Layers}}", ref)
		if r.ExitCode == 0 {
			assert.Check(t, is.Equal(strings.TrimSpace(r.Stdout()), id+" 4"), "iteration %d", i)
			t.Logf("iteration %d: the pull had finished", i)
			d.DockerOK(t, "rmi", ref)
		} else {
			assert.Check(t, is.Equal(st.Images, 0), "iteration %d: an image nobody can see", i)
		}
		if t.Failed() {
			return
		}
	}
	for _, l := range strings.Split(d.Log(), "\n") {
		if i := strings.Index(l, "msg=\"removed"); i >= 0 {
			t.Log(l[i+5:])
		}
	}
	d.DockerOK(t, "pull", "-q", ref)
	assert.Equal(t, inspectF(t, d, "{{.Id}}", ref), id)
}

// SIGKILL of berthd while a start's monitor is in the OCI runtime's create
// (a runtime that waits there until told): the restart stops that monitor
// and its create before it releases the container's root filesystem, so
// nothing goes on to create the container in a released root filesystem;
// the container then starts, runs and is removed with nothing left. Three
// times, with a running bystander that must not be touched.
func TestKillDuringLaunch(t *testing.T) {
	t.Parallel()
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	dir := shortTempDir(t)
	rt, in, goFile := filepath.Join(dir, "runc-waits"), filepath.Join(dir, "in"), filepath.Join(dir, "go")
	script := fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" create \"*)\n\ttouch %s\n\twhile [ ! -e %s ]; do sleep 0.01; done\nesac\nexec %s \"$@\"\n", in, goFile, runc)
	assert.NilError(t, os.WriteFile(rt, []byte(script), 0o755))
	d := testenv.StartDaemon(t, append(testenv.OwnCgroupParent(t), "--add-runtime", "waits="+rt)...)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "bystander", "busybox", "sleep", "300")
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("cut%d", i)
		for _, f := range []string{in, goFile} {
			assert.NilError(t, os.RemoveAll(f))
		}
		d.DockerOK(t, "create", "--name", name, "--runtime", "waits", "busybox", "sleep", "300")
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Docker("start", name)
		}()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if _, err := os.Stat(in); err != nil {
				return poll.Continue("the monitor has not reached the runtime's create")
			}
			return poll.Success()
		}, poll.WithTimeout(time.Minute), poll.WithDelay(10*time.Millisecond))
		d.Kill(t)
		<-done
		d.Start(t)
		assert.Check(t, is.Len(pidsRunning(rt), 0), "iteration %d: the cut launch's create runs on after the restart", i)
		assert.NilError(t, os.WriteFile(goFile, nil, 0o644)) // what still waits goes on now
		assert.Check(t, is.Equal(inspectF(t, d, "{{.State.Status}}", "bystander"), "running"))
		checkTruthful(t, d, fmt.Sprintf("iteration %d", i))
		d.DockerOK(t, "start", name)
		assert.Check(t, is.Equal(d.DockerOK(t, "exec", name, "echo", "in"), "in\n"))
		d.DockerOK(t, "rm", "-f", name)
		assert.Check(t, !strings.Contains(d.Log(), "from its mount point"), "iteration %d: the root filesystem's mount point was written while released", i)
		if t.Failed() {
			return
		}
	}
	d.DockerOK(t, "rm", "-f", "bystander")
	waitEmpty(t, d)
}

// pidsRunning lists the processes running the program (or script) path:
// one of their first two arguments is path.
func pidsRunning(path string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if args[0] == path || len(args) > 1 && args[1] == path {
			out = append(out, e.Name())
		}
	}
	return out
}
