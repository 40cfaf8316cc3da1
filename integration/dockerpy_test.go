package integration

import (
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
)

// TestDockerPyContainers drives containers, exec, logs, networks, volumes and
// events with Debian's docker-py (API 1.41), the way scripts use it.
func TestDockerPyContainers(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	const script = `
import docker, time
c = docker.from_env()
assert c.ping()
info = c.info()
assert info["Driver"] == "overlay", info["Driver"]

out = c.containers.run("busybox", ["sh", "-c", "echo hello; echo oops >&2"], remove=True)
assert out == b"hello\n", out

ctr = c.containers.run("busybox", ["sh", "-c", "echo ready; sleep 60"], detach=True, name="py-sleeper", labels={"app": "py"})
for _ in range(50):
    if b"ready" in ctr.logs():
        break
    time.sleep(0.1)
ctr.reload()
assert ctr.status == "running", ctr.status
assert ctr.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], ctr.attrs["NetworkSettings"]
assert c.api.inspect_container(ctr.id)["State"]["Running"]
assert ctr.labels["app"] == "py"
code, output = ctr.exec_run(["sh", "-c", "echo from-exec; exit 3"])
assert code == 3 and output == b"from-exec\n", (code, output)
code, output = ctr.exec_run("id -u", user="33")
assert output == b"33\n", output
assert [x.name for x in c.containers.list(filters={"label": "app=py"})] == ["py-sleeper"]

net = c.networks.create("py-net", labels={"who": "py"})
net.connect(ctr, aliases=["pyalias"])
peer = c.containers.run("busybox", ["nslookup", "pyalias"], network="py-net", remove=True)
assert b"Address" in peer, peer
net.disconnect(ctr)
net.remove()

vol = c.volumes.create("py-vol")
c.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], volumes={"py-vol": {"bind": "/data", "mode": "rw"}}, remove=True)
out = c.containers.run("busybox", ["cat", "/data/f"], volumes=["py-vol:/data:ro"], remove=True)
assert out == b"kept\n", out

since = int(time.time()) - 1
ctr.stop(timeout=1)
res = ctr.wait()
assert res["StatusCode"] == 137, res
evs = c.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": "py-sleeper"})
actions = [e["Action"] for e in evs]
assert "die" in actions and "stop" in actions, actions
ctr.remove()
vol.remove()
try:
    c.containers.get("py-sleeper")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
print("ok")
`
	assert.Equal(t, d.DockerPy(t, script), "ok")
}
