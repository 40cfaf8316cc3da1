package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// shmMounted says whether a container's shareable /dev/shm is mounted on
// the host (under its directory in the data root).
func shmMounted(t *testing.T, d *testenv.Daemon, id string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	assert.NilError(t, err)
	return strings.Contains(string(b), d.DataRoot+"/containers/"+id+"/mounts/shm ")
}

// TestIpcShareable: a shareable container's IPC namespace and /dev/shm are
// joined by --ipc container:<name>, which is stored as the full id and so
// survives a rename of the donor; a private donor, a stopped one and a
// missing one are refused with dockerd's words; the donor's tmpfs goes
// away when it stops.
func TestIpcShareable(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	d.DockerOK(t, "run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "300")
	donor := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "donor"))
	assert.Check(t, shmMounted(t, d, donor), "no /dev/shm of the shareable donor on the host")
	d.DockerOK(t, "exec", "donor", "sh", "-c", "echo from-donor > /dev/shm/marker")
	donorNS := strings.TrimSpace(d.DockerOK(t, "exec", "donor", "readlink", "/proc/self/ns/ipc"))

	out := d.DockerOK(t, "run", "--rm", "--ipc", "container:donor", "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/marker; echo from-joiner > /dev/shm/back")
	assert.Check(t, is.Equal(out, donorNS+"\nfrom-donor\n"))
	assert.Check(t, is.Equal(d.DockerOK(t, "exec", "donor", "cat", "/dev/shm/back"), "from-joiner\n"))

	// stored as the full id: a rename of the donor keeps the joiner working
	d.DockerOK(t, "create", "--name", "joiner", "--ipc", "container:donor", "busybox", "sleep", "300")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.IpcMode}}", "joiner")), "container:"+donor))
	d.DockerOK(t, "rename", "donor", "donor2")
	for i := 0; i < 2; i++ { // a second start finds the same namespace
		d.DockerOK(t, "start", "joiner")
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "exec", "joiner", "readlink", "/proc/self/ns/ipc")), donorNS))
		assert.Check(t, is.Equal(d.DockerOK(t, "exec", "joiner", "cat", "/dev/shm/marker"), "from-donor\n"))
		d.DockerOK(t, "stop", "-t", "0", "joiner")
	}

	// a private container's IPC is not joinable
	d.DockerOK(t, "run", "-d", "--name", "private", "busybox", "sleep", "300")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.IpcMode}}", "private")), "private"))
	privID := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "private"))
	r := d.Docker("run", "--rm", "--ipc", "container:private", "busybox", "true")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "failed to join IPC namespace: container "+privID+": non-shareable IPC (hint: use IpcMode:shareable for the donor container)"))

	// a stopped donor: its tmpfs is gone, and joining says it is not running
	d.DockerOK(t, "stop", "-t", "0", "donor2")
	assert.Check(t, !shmMounted(t, d, donor), "the stopped donor's /dev/shm is still mounted")
	r = d.Docker("start", "joiner")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "failed to join IPC namespace: container "+donor+" is not running"))
	// and after a restart of the donor, the joiner joins its new namespace
	d.DockerOK(t, "start", "donor2")
	d.DockerOK(t, "start", "joiner")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "exec", "joiner", "readlink", "/proc/self/ns/ipc")),
		strings.TrimSpace(d.DockerOK(t, "exec", "donor2", "readlink", "/proc/self/ns/ipc"))))

	// a missing container is not found at create, as in dockerd
	code, body := apiCall(t, d, "POST", "/containers/create", strings.NewReader(`{"Image":"busybox","HostConfig":{"IpcMode":"container:nosuch"}}`))
	assert.Check(t, is.Equal(code, 404), body)
	assert.Check(t, is.Contains(body, "No such container: nosuch"))

	d.DockerOK(t, "rm", "-f", "joiner", "donor2", "private")
	assert.Check(t, !shmMounted(t, d, donor))
}

// TestIpcDefaultMode: a container that names no IPC mode gets the daemon's
// default, never an empty mode: private, or shareable with
// --default-ipc-mode shareable (and then it is joinable); clients older
// than API 1.40 get shareable, as from dockerd.
func TestIpcDefaultMode(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "create", "--name", "plain", "busybox", "true")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.IpcMode}}", "plain")), "private"))
	for version, want := range map[string]string{"v1.39": "shareable", "v1.40": "private", "v1.24": "shareable"} {
		code, body := apiCall(t, d, "POST", "/"+version+"/containers/create", strings.NewReader(`{"Image":"busybox"}`))
		assert.Assert(t, is.Equal(code, 201), body)
		id := jsonField(t, body, "Id")
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.IpcMode}}", id)), want), version)
	}

	s := testenv.StartDaemon(t, "--default-ipc-mode", "shareable")
	s.LoadBusybox(t)
	s.DockerOK(t, "run", "-d", "--name", "donor", "busybox", "sleep", "300")
	assert.Check(t, is.Equal(strings.TrimSpace(s.DockerOK(t, "inspect", "-f", "{{.HostConfig.IpcMode}}", "donor")), "shareable"))
	s.DockerOK(t, "exec", "donor", "touch", "/dev/shm/seen")
	s.DockerOK(t, "run", "--rm", "--ipc", "container:donor", "busybox", "test", "-e", "/dev/shm/seen")
}

// TestPidContainer: --pid container:<name> joins a running container's PID
// namespace (stored as the full id); a stopped one is refused.
func TestPidContainer(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "pidhost", "busybox", "sleep", "301")
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "pidhost"))
	out := d.DockerOK(t, "run", "--rm", "--pid", "container:pidhost", "busybox", "ps", "-o", "pid,args")
	assert.Check(t, is.Contains(out, "sleep 301"))
	d.DockerOK(t, "create", "--name", "pidguest", "--pid", "container:pidhost", "busybox", "sleep", "300")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.PidMode}}", "pidguest")), "container:"+id))
	d.DockerOK(t, "stop", "-t", "0", "pidhost")
	r := d.Docker("start", "pidguest")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "failed to join PID namespace: container "+id+" is not running"))
}

// TestIpcDockerPy: docker-py's ipc_mode, as its own tests use it.
func TestIpcDockerPy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerPy(t, `
import docker
c = docker.from_env()
donor = c.containers.run("busybox", ["sh", "-c", "echo py > /dev/shm/f; sleep 300"], detach=True, ipc_mode="shareable", name="pydonor")
donor.reload()
assert donor.attrs["HostConfig"]["IpcMode"] == "shareable", donor.attrs["HostConfig"]["IpcMode"]
ns = donor.exec_run(["readlink", "/proc/self/ns/ipc"]).output
for _ in range(100):
    if donor.exec_run(["test", "-e", "/dev/shm/f"]).exit_code == 0:
        break
out = c.containers.run("busybox", ["sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/f"], ipc_mode="container:pydonor", remove=True)
assert out == ns + b"py\n", (out, ns)
j = c.containers.create("busybox", "true", ipc_mode="container:pydonor")
assert j.attrs["HostConfig"]["IpcMode"] == "container:" + donor.id, j.attrs["HostConfig"]["IpcMode"]
j.remove()
donor.remove(force=True)
print("ok")
`)
	assert.Check(t, is.Equal(out, "ok"))
}

// jsonField reads one string field of a JSON object answer.
func jsonField(t *testing.T, body, field string) string {
	t.Helper()
	var obj map[string]any
	assert.NilError(t, json.Unmarshal([]byte(body), &obj), body)
	v, _ := obj[field].(string)
	return v
}
