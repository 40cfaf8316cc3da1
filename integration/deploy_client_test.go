package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// waitOrigin waits for a deployment's record to say who manages it.
func waitOrigin(t *testing.T, d *testenv.Daemon, project, origin string, replicas map[string]int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		r := d.Berth(t, "compose", "inspect", "-p", project)
		if r.ExitCode != 0 {
			return poll.Continue("%s", r.Stderr())
		}
		st := deployment(t, d, project)
		// with no record yet, inspect shows the containers as a client's
		// project (origin compose, no pins): the supervisor records it a
		// moment after the client's up
		if st.Created.IsZero() {
			return poll.Continue("no record yet")
		}
		if st.Origin != origin {
			return poll.Continue("origin %s", st.Origin)
		}
		for svc, n := range replicas {
			if got := service(st, svc).Desired; got != n {
				return poll.Continue("%s wants %d, not %d", svc, got, n)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(100*time.Millisecond))
}

// stays checks, for longer than the supervisor's grace, that a condition
// holds: what the client removed is not resurrected.
func stays(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second) // the supervisor's grace is 2s
	for time.Now().Before(deadline) {
		assert.Assert(t, cond(), what)
		time.Sleep(250 * time.Millisecond)
	}
}

// The supervisor never fights a client. A project of the docker compose
// CLI gets a record (pins, inspect) but what the CLI removes stays removed
// (down, rm, up --scale behave as on Docker); a berth-deployed project that
// the CLI scales becomes the CLI's, and its down is final. Orphans and
// --remove-orphans work as compose has them, natively and with the CLI.
func TestDeployNeverFightsTheComposeCLI(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	file := writeProject(t, scaleYAML)
	f := []string{"-p", "shop", "-f", file}
	d.ComposeOK(t, append(f, "up", "-d", "--scale", "worker=3")...)
	waitOrigin(t, d, "shop", compose.OriginCompose, map[string]int{"worker": 3, "web": 1})
	st := deployment(t, d, "shop")
	imgID := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "busybox:latest"))
	assert.Check(t, service(st, "worker").Pin != nil && service(st, "worker").Pin.ImageID == imgID, "record %+v, image %s, containers:\n%s", st, imgID, d.DockerOK(t, "ps", "-a", "--format", "{{.Names}} {{.Label \"com.docker.compose.image\"}}"))

	d.ComposeOK(t, append(f, "up", "-d", "--scale", "worker=1")...)
	waitOrigin(t, d, "shop", compose.OriginCompose, map[string]int{"worker": 1})
	d.ComposeOK(t, append(f, "rm", "-sf", "web")...)
	stays(t, "web is not resurrected", func() bool {
		return !strings.Contains(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"), "shop-web-1")
	})
	d.ComposeOK(t, append(f, "down")...)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if d.Berth(t, "compose", "inspect", "-p", "shop").ExitCode == 0 {
			return poll.Continue("the record is still there")
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second))
	assert.Check(t, is.Equal(leftovers(t, d, "shop"), ""))

	// berth deploys it: berth's; the CLI scales it: the CLI's again
	berthOK(t, d, "compose", "up", "-f", file)
	waitOrigin(t, d, "shop", compose.OriginBerth, map[string]int{"worker": 1})
	d.ComposeOK(t, append(f, "up", "-d", "--scale", "worker=2")...)
	waitOrigin(t, d, "shop", compose.OriginCompose, map[string]int{"worker": 2})
	d.ComposeOK(t, append(f, "down")...)
	stays(t, "nothing comes back after down", func() bool { return leftovers(t, d, "shop") == "" })

	// a berth deployment that docker compose takes down is gone, too
	berthOK(t, d, "compose", "up", "-f", file)
	waitOrigin(t, d, "shop", compose.OriginBerth, nil)
	r := d.Compose(append(f, "down")...)
	assert.Check(t, r.ExitCode == 0, r.Combined())
	stays(t, "nothing comes back after down", func() bool { return leftovers(t, d, "shop") == "" })
	assert.Check(t, is.Contains(d.Berth(t, "compose", "inspect", "-p", "shop").Stderr(), "No such deployment"))

	// orphans, as compose has them: a service removed from the file stays
	// (with a warning) until up --remove-orphans; native and CLI agree
	berthOK(t, d, "compose", "up", "-f", file)
	less := writeProject(t, strings.SplitN(scaleYAML, "  worker:", 2)[0])
	out := berthOK(t, d, "compose", "up", "-p", "shop", "-f", less)
	assert.Check(t, is.Contains(out, "Found orphan containers (shop-worker-1)"))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--format", "{{.Names}}"), "shop-worker-1"))
	st = deployment(t, d, "shop")
	assert.Check(t, is.Equal(service(st, "worker").Desired, 0), "an orphan runs, but is not wanted")
	assert.Check(t, is.Equal(service(st, "worker").Running, 1))
	out = berthOK(t, d, "compose", "up", "-p", "shop", "-f", less, "--remove-orphans")
	assert.Check(t, is.Contains(out, "Container shop-worker-1  Removed"))
	assert.Check(t, is.Equal(service(deployment(t, d, "shop"), "worker").Name, ""), "the record has no worker")

	// the CLI's --remove-orphans on berth's deployment
	berthOK(t, d, "compose", "up", "-f", file)
	waitReplicas(t, d, "shop", "worker", 1)
	d.ComposeOK(t, "-p", "shop", "-f", less, "up", "-d", "--remove-orphans")
	stays(t, "the orphan stays removed", func() bool {
		return !strings.Contains(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"), "shop-worker-1")
	})
	berthOK(t, d, "compose", "down", "-p", "shop")
}
