package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestCreateOptionsAsDockerd: container options that clients' test suites
// found broken: --platform of a platform the image does not have, the
// runtime in inspect, real-time CPU limits, device requests without a
// driver, and the host's /etc/hosts on the host's network.
func TestCreateOptionsAsDockerd(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	// --platform: another platform is not found (the CLI then tries a pull);
	// the image's own is fine; before API 1.41 the parameter is ignored
	code, body := apiCall(t, d, "POST", "/containers/create?platform=linux/arm64", strings.NewReader(`{"Image":"busybox"}`))
	assert.Check(t, is.Equal(code, 404), body)
	assert.Check(t, is.Contains(body, "image with reference busybox was found but its platform (linux/amd64) does not match the specified platform (linux/arm64)"))
	code, body = apiCall(t, d, "POST", "/containers/create?platform=linux/amd64", strings.NewReader(`{"Image":"busybox"}`))
	assert.Check(t, is.Equal(code, 201), body)
	code, body = apiCall(t, d, "POST", "/v1.40/containers/create?platform=linux/arm64", strings.NewReader(`{"Image":"busybox"}`))
	assert.Check(t, is.Equal(code, 201), body)

	// HostConfig.Runtime
	d.DockerOK(t, "create", "--name", "rt", "busybox", "true")
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.Runtime}}", "rt"), "runc\n"))
	r := d.Docker("create", "--runtime", "kata", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "unknown or invalid runtime name: kata"))

	// --cpu-rt-*: accepted where the cgroup v1 cpu controller has them (the
	// hybrid cgroups of this machine kind do)
	d.DockerOK(t, "create", "--name", "rtprio", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "500", "busybox", "true")
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}", "rtprio"), "1000 500\n"))
	r = d.Docker("create", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "5000", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "cpu real-time runtime cannot be higher than cpu real-time period"))

	// device requests: no driver serves them, refused at start as dockerd does
	d.DockerOK(t, "create", "--name", "gpu", "--gpus", "all", "busybox", "true")
	r = d.Docker("start", "gpu")
	assert.Check(t, is.Contains(r.Stderr(), `could not select device driver "" with capabilities: [[gpu]]`))
	code, body = apiCall(t, d, "POST", "/containers/create?name=cdi", strings.NewReader(`{"Image":"busybox","HostConfig":{"DeviceRequests":[{"Driver":"cdi","DeviceIDs":["vendor.com/gpu=0"]}]}}`))
	assert.Assert(t, is.Equal(code, 201), body)
	code, body = apiCall(t, d, "POST", "/containers/cdi/start", nil)
	assert.Check(t, is.Equal(code, 500), body)
	assert.Check(t, is.Contains(body, `could not select device driver \"cdi\" with capabilities: []`))
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "cdi"), "created\n"))

	// the host's network: the host's /etc/hosts, unless --add-host
	hostHosts, err := os.ReadFile("/etc/hosts")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "--network", "host", "busybox", "cat", "/etc/hosts"), string(hostHosts)))
	out := d.DockerOK(t, "run", "--rm", "--network", "host", "--add-host", "extra:10.1.2.3", "busybox", "cat", "/etc/hosts")
	assert.Check(t, is.Contains(out, "10.1.2.3\textra\n"))
	assert.Check(t, is.Contains(out, "127.0.0.1\tlocalhost\n"))
}

// TestCPURealtimeDaemon: with the daemon's --cpu-rt-runtime the containers'
// parent cgroups get real-time runtime, so a container with
// --cpu-rt-runtime starts (without it the kernel refuses, as with dockerd).
func TestCPURealtimeDaemon(t *testing.T) {
	t.Parallel()
	args := append(testenv.OwnCgroupParent(t), "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "20000")
	d := testenv.StartDaemon(t, args...)
	d.LoadBusybox(t)
	for i := 0; i < 2; i++ {
		d.DockerOK(t, "run", "--rm", "--cpu-rt-runtime", "5000", "busybox", "true")
	}
	parent := d.CgroupParent()
	b, err := os.ReadFile("/sys/fs/cgroup/cpu/" + parent + "/cpu.rt_runtime_us")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "20000\n"))
}

// TestImageParent: a committed image's Parent is the image it was made
// from, as docker-py's test_commit expects.
func TestImageParent(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerPy(t, `
import docker
api = docker.from_env(version="1.41").api
c = api.create_container("busybox", ["touch", "/test"])
api.start(c["Id"])
api.wait(c["Id"])
img = api.inspect_image(api.commit(c["Id"])["Id"])
busybox = api.inspect_image("busybox")
assert img["Parent"] == busybox["Id"], (img["Parent"], busybox["Id"])
assert busybox["Parent"] == "", busybox["Parent"]
print("ok")
`)
	assert.Check(t, is.Equal(out, "ok"))
	id := strings.TrimSpace(d.DockerOK(t, "commit", "--change", "LABEL a=b", strings.TrimSpace(d.DockerOK(t, "create", "busybox", "true"))))
	busybox := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "busybox"))
	_, body := apiCall(t, d, "GET", "/images/"+id+"/json", nil)
	assert.Check(t, is.Contains(body, `"Parent":"`+busybox+`"`))
	_, body = apiCall(t, d, "GET", "/images/busybox/json", nil)
	assert.Check(t, !strings.Contains(body, `"Parent"`), "an empty Parent is left out by API 1.52 and later")
}

// TestBindDaemonRoot: a bind of the data root (or in it) is rslave unless it
// asks for rslave or rshared, and other propagations are refused, as
// dockerd's TestMountDaemonRoot expects.
func TestBindDaemonRoot(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	for _, src := range []string{d.DataRoot, d.DataRoot + "/containers"} {
		d.DockerOK(t, "run", "--rm", "-v", src+":/foo", "busybox", "true")
		id := strings.TrimSpace(d.DockerOK(t, "create", "-v", src+":/foo", "busybox", "true"))
		assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}}", id), "rslave\n"))
		id = strings.TrimSpace(d.DockerOK(t, "create", "--mount", "type=bind,src="+src+",dst=/foo,bind-propagation=rshared", "busybox", "true"))
		assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}}", id), "rshared\n"))
		for _, prop := range []string{"private", "rprivate", "slave", "shared"} {
			r := d.Docker("create", "-v", src+":/foo:"+prop, "busybox", "true")
			assert.Check(t, is.Contains(r.Stderr(), `invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root`), prop)
		}
	}
	id := strings.TrimSpace(d.DockerOK(t, "create", "-v", t.TempDir()+":/foo", "busybox", "true"))
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}}", id), "rprivate\n"))
}
