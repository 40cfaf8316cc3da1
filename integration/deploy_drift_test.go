package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The second "done when": a new image pushed under the same tag;
// berth compose pull says which service drifted, berth compose up
// recreates only that one, one replica at a time, and reports the old and
// new digests; with the registry stopped (and the tag even removed), a lost
// replica comes back from its pin, and up deploys from the pins.
func TestDeployPullDriftAndRestore(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	reg := testenv.StartRegistry(t, false)
	push := func(tag, comment string) string {
		p, id := testenv.Image(t, testimage.Options{Tag: "drift:" + comment, Comment: comment})
		reg.Push(t, p, tag)
		return id
	}
	push("fleet/base:latest", "base")
	v1 := push("fleet/app:latest", "v1")
	file := writeProject(t, `name: drift
services:
  app:
    image: `+reg.Addr+`/fleet/app:latest
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    deploy:
      replicas: 2
  base:
    image: `+reg.Addr+`/fleet/base:latest
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
`)
	berthOK(t, d, "compose", "up", "-f", file)
	pin := service(deployment(t, d, "drift"), "app").Pin
	assert.Assert(t, pin != nil)
	assert.Check(t, is.Equal(pin.ImageID, v1))
	assert.Check(t, strings.HasPrefix(pin.RepoDigest, reg.Addr+"/fleet/app@sha256:"), pin.RepoDigest)
	before := waitReplicas(t, d, "drift", "app", 2)
	base := waitReplicas(t, d, "drift", "base", 1)

	v2 := push("fleet/app:latest", "v2")
	out := berthOK(t, d, "compose", "pull", "-f", file)
	assert.Check(t, is.Contains(out, "app "+reg.Addr+"/fleet/app:latest  Pulled  "+pin.RepoDigest+" -> "), out)
	assert.Check(t, is.Contains(out, "(berth compose up recreates it)"))
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "fleet/base") {
			assert.Check(t, !strings.Contains(line, "recreates"), line)
		}
	}
	since := time.Now().Format(time.RFC3339Nano)
	out = berthOK(t, d, "compose", "up", "-f", file)
	newPin := service(deployment(t, d, "drift"), "app").Pin
	assert.Check(t, is.Equal(newPin.ImageID, v2))
	assert.Check(t, is.Contains(out, "Service app  Image moved: "+pin.RepoDigest+" -> "+newPin.RepoDigest), out)
	assert.Check(t, !strings.Contains(out, "Service base"), out)
	after := waitReplicas(t, d, "drift", "app", 2)
	for n, id := range after {
		assert.Check(t, id != before[n], "%s was not recreated", n)
	}
	assert.Check(t, is.DeepEqual(waitReplicas(t, d, "drift", "base", 1), base))
	ld := deployment(t, d, "drift").LastDeploy
	assert.Assert(t, ld != nil && len(ld.Drift) == 1)
	assert.Check(t, is.Equal(ld.Drift[0].OldDigest, pin.RepoDigest))
	assert.Check(t, is.Equal(ld.Drift[0].NewDigest, newPin.RepoDigest))
	// one replica at a time: replica 1 is replaced and started before 2 goes
	evs := d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=container", "--filter", "label="+compose.LabelService+"=app", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(evs), "\n") {
		if f := strings.Fields(l); len(f) == 2 && (f[0] == "destroy" || f[0] == "start") {
			order = append(order, l)
		}
	}
	assert.Check(t, is.DeepEqual(order, []string{"destroy drift-app-1", "start drift-app-1", "destroy drift-app-2", "start drift-app-2"}))
	evs = d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=deployment", "--filter", "label="+compose.LabelProject+"=drift", "--format", "{{.Action}} {{.Actor.Attributes.service}} {{.Actor.Attributes.oldDigest}} {{.Actor.Attributes.newDigest}}")
	assert.Check(t, is.Contains(evs, "drift app "+pin.RepoDigest+" "+newPin.RepoDigest), evs)

	// the registry down: a lost replica comes back from its pin
	reg.Stop(t)
	since = time.Now().Format(time.RFC3339Nano)
	d.DockerOK(t, "rm", "-f", "drift-app-2")
	waitReplicas(t, d, "drift", "app", 2)
	evs = d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=deployment", "--format", "{{.Action}} {{.Actor.Attributes.container}}")
	assert.Check(t, is.Contains(evs, "restore drift-app-2"), evs)
	assert.Check(t, is.Equal(inspectF(t, d, "{{.Image}}", "drift-app-2"), v2))
	// and with the tag gone too: by its digest
	d.DockerOK(t, "rmi", "-f", reg.Addr+"/fleet/app:latest")
	d.DockerOK(t, "rm", "-f", "drift-app-1")
	waitReplicas(t, d, "drift", "app", 2)
	assert.Check(t, is.Equal(inspectF(t, d, "{{.Image}}", "drift-app-1"), v2))
	// (untagging the repository's last tag drops its digest name too, as
	// on Docker: then the pin's image ID names it)
	assert.Check(t, slices.Contains([]string{newPin.RepoDigest, v2}, inspectF(t, d, "{{.Config.Image}}", "drift-app-1")))
	// up deploys from the pins: nothing to pull, nothing recreated
	out = berthOK(t, d, "compose", "up", "-f", file)
	assert.Check(t, is.Contains(out, "Service app  Restored from its pinned image"), out)
	assert.Check(t, !strings.Contains(out, "Recreated"), out)
	assert.Check(t, is.Equal(deployment(t, d, "drift").LastDeploy.Result, compose.ResultSucceeded))

	// an image never deployed here, registry down: a clear error, nothing made
	bad := writeProject(t, "name: drift2\nservices:\n  x:\n    image: "+reg.Addr+"/fleet/other:1\n")
	r := d.Berth(t, "compose", "up", "-f", bad)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "fleet/other:1 is not here and could not be pulled"), r.Stderr())
	assert.Check(t, is.Equal(leftovers(t, d, "drift2"), ""))
	assert.Check(t, d.Berth(t, "compose", "inspect", "-p", "drift2").ExitCode != 0)
}
