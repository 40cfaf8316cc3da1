package integration

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// berthOK runs the berth CLI and fails the test unless it exits 0.
func berthOK(t *testing.T, d *testenv.Daemon, args ...string) string {
	t.Helper()
	r := d.Berth(t, args...)
	assert.Assert(t, r.ExitCode == 0, "berth %s: %s", strings.Join(args, " "), r.Combined())
	return r.Stdout()
}

// deployment is berth compose inspect -p project.
func deployment(t *testing.T, d *testenv.Daemon, project string) compose.DeploymentStatus {
	t.Helper()
	var st compose.DeploymentStatus
	out := berthOK(t, d, "compose", "inspect", "-p", project)
	assert.NilError(t, json.Unmarshal([]byte(out), &st), out)
	return st
}

func service(st compose.DeploymentStatus, name string) compose.ServiceStatus {
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	return compose.ServiceStatus{}
}

// waitReplicas waits until exactly want are running, named and numbered
// project-service-1..n, and returns their container IDs by name.
func waitReplicas(t *testing.T, d *testenv.Daemon, project, svc string, want int) map[string]string {
	t.Helper()
	var ids map[string]string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		out := d.DockerOK(t, "ps", "-a", "--filter", "label="+compose.LabelProject+"="+project, "--filter", "label="+compose.LabelService+"="+svc,
			"--filter", "label="+compose.LabelOneoff+"=False", "--no-trunc", "--format", "{{.Names}} {{.State}} {{.ID}}")
		ids = map[string]string{}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			if f[1] != "running" {
				return poll.Continue("%s is %s", f[0], f[1])
			}
			ids[f[0]] = f[2]
			names = append(names, f[0])
		}
		slices.Sort(names)
		var wantNames []string
		for n := 1; n <= want; n++ {
			wantNames = append(wantNames, compose.DefaultContainerName(project, svc, n))
		}
		if !slices.Equal(names, wantNames) {
			return poll.Continue("replicas %v, want %v", names, wantNames)
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(100*time.Millisecond))
	return ids
}

// dnsRight checks that n.worker.<project>.berth.internal answers each
// replica's address, asked from another container of the project.
func dnsRight(t *testing.T, d *testenv.Daemon, from, project, svc string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		name := compose.DefaultContainerName(project, svc, i)
		want := containerIPs(t, d, name)
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			got := nslookupAddrs(t, d, from, strings.Join([]string{strconv.Itoa(i), svc, project, "berth.internal"}, "."))
			if !slices.Equal(got, want) {
				return poll.Continue("%d.%s: %v, want %v", i, svc, got, want)
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second))
	}
}

const scaleYAML = `name: shop
services:
  web:
    image: busybox:latest
    pull_policy: never
    command: ["sh", "-c", "while true; do sleep 1; done"]
    stop_signal: SIGKILL
  worker:
    image: busybox:latest
    pull_policy: never
    command: ["sh", "-c", "while true; do sleep 1; done"]
    stop_signal: SIGKILL
`

// The first "done when": scale to 3, and 3 replicas run, with the
// same names and numbers and DNS right, after a plain up, a SIGKILL of
// berthd (with a replica's record broken meanwhile), a docker rm -f behind
// berth's back and a simulated reboot; the docker compose CLI agrees; bad
// input changes nothing.
func TestDeployScaleIsKept(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	file := writeProject(t, scaleYAML)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	berthOK(t, d, "compose", "up", "-f", file)
	out := berthOK(t, d, "compose", "scale", "-p", "shop", "worker=3")
	assert.Check(t, is.Contains(out, "Container shop-worker-3  Created"))
	ids := waitReplicas(t, d, "shop", "worker", 3)
	dnsRight(t, d, "shop-web-1", "shop", "worker", 3)
	ps := composePs(t, d, "-p", "shop")
	for _, n := range []string{"shop-worker-1", "shop-worker-2", "shop-worker-3"} {
		assert.Check(t, is.Equal(ps[n]["State"], "running"), n)
	}
	st := deployment(t, d, "shop")
	assert.Check(t, is.Equal(st.Origin, compose.OriginBerth))
	assert.Check(t, is.Equal(service(st, "worker").Desired, 3))
	assert.Check(t, is.Contains(berthOK(t, d, "compose", "ls"), "worker 3/3"))

	// the scale is on the event stream, for this project
	evs := d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=deployment", "--filter", "label="+compose.LabelProject+"=shop", "--format", "{{.Action}} {{.Actor.Attributes.service}} {{.Actor.Attributes.replicas}}")
	assert.Check(t, is.Contains(evs, "deploy"))
	assert.Check(t, is.Contains(evs, "scale worker 3"))

	// bad input: clear errors, the record unchanged
	for _, tc := range []struct{ args, want []string }{
		{[]string{"-p", "shop", "db=1"}, []string{"no such service: db"}},
		{[]string{"-p", "shop", "worker=-1"}, []string{`invalid number of replicas for service "worker": -1`}},
		{[]string{"-p", "nope", "worker=1"}, []string{"No such deployment: nope"}},
	} {
		r := d.Berth(t, append([]string{"compose", "scale"}, tc.args...)...)
		assert.Check(t, r.ExitCode != 0)
		for _, w := range tc.want {
			assert.Check(t, is.Contains(r.Stderr(), w))
		}
	}
	r := d.Berth(t, "compose", "inspect", "-p", "nope")
	assert.Check(t, r.ExitCode != 0 && strings.Contains(r.Stderr(), "No such deployment: nope"), r.Combined())
	assert.Check(t, is.DeepEqual(deployment(t, d, "shop").Services, st.Services))

	// a plain up keeps the count
	out = berthOK(t, d, "compose", "up", "-f", file)
	assert.Check(t, !strings.Contains(out, "Removed"), out)
	assert.Check(t, is.DeepEqual(waitReplicas(t, d, "shop", "worker", 3), ids))

	// berthd killed, and the record of replica 3 broken meanwhile: the
	// same 1 and 2, and a new 3 under its name and number
	d.Kill(t)
	editRecords(t, d, func(b *bolt.Bucket) error { return b.Put([]byte(ids["shop-worker-3"]), []byte("\x00garbage{")) })
	d.Start(t)
	again := waitReplicas(t, d, "shop", "worker", 3)
	assert.Check(t, is.Equal(again["shop-worker-1"], ids["shop-worker-1"]))
	assert.Check(t, is.Equal(again["shop-worker-2"], ids["shop-worker-2"]))
	assert.Check(t, again["shop-worker-3"] != ids["shop-worker-3"])
	d.DockerOK(t, "rm", "broken-"+ids["shop-worker-3"][:12])
	ids = again

	// replica 2 removed behind berth's back: back, under its name and number
	d.DockerOK(t, "rm", "-f", "shop-worker-2")
	after := waitReplicas(t, d, "shop", "worker", 3)
	assert.Check(t, after["shop-worker-2"] != ids["shop-worker-2"])
	assert.Check(t, is.Equal(after["shop-worker-1"], ids["shop-worker-1"]))
	dnsRight(t, d, "shop-web-1", "shop", "worker", 3)

	// a reboot: everything down, no restart policy; berth brings them back
	d.SimulateReboot(t)
	d.Start(t)
	waitReplicas(t, d, "shop", "worker", 3)
	waitReplicas(t, d, "shop", "web", 1)
	dnsRight(t, d, "shop-web-1", "shop", "worker", 3)
	assert.Check(t, is.Equal(service(deployment(t, d, "shop"), "worker").Desired, 3))

	// without the file: from the record
	out = berthOK(t, d, "compose", "up", "-p", "shop")
	assert.Check(t, is.Contains(out, "Container shop-worker-3  Running"))
	berthOK(t, d, "compose", "down", "-p", "shop")
	assert.Check(t, is.Equal(leftovers(t, d, "shop"), ""))
	r = d.Berth(t, "compose", "inspect", "-p", "shop")
	assert.Check(t, r.ExitCode != 0, "the record goes with down")
}
