package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLinksAreTheLinkersNames: --link db:database makes "database" resolve,
// for the linking container only, to the linked container.
func TestLinksAreTheLinkersNames(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "lnk")
	d.DockerOK(t, "run", "-d", "--name", "lnk-db", "--network", "lnk", "busybox", "sleep", "60")
	ip := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \"lnk\").IPAddress}}", "lnk-db"))
	out := d.DockerOK(t, "run", "--rm", "--network", "lnk", "--link", "lnk-db:database", "busybox", "nslookup", "database")
	assert.Check(t, is.Contains(out, "Address: "+ip), out)
	r := d.Docker("run", "--rm", "--network", "lnk", "busybox", "nslookup", "database")
	assert.Check(t, !strings.Contains(r.Stdout(), "Address: "+ip), "an unlinked container resolved the alias: %s", r.Stdout())
}

// TestLegacyLinks: --link on the default bridge, as dockerd does it: the
// link's environment variables and /etc/hosts line in the linking
// container, the link's name in the linked container's Names and as a
// name that resolves to it, HostConfig.Links as "/child:/parent/alias",
// kept through renames of either side, and rm --link.
func TestLegacyLinks(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "db", "-e", "FOO=1", "-e", "PASSWORD=a=b", "--expose", "6379", "--hostname", "dbhost", "busybox", "sleep", "300")
	dbIP := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db"))

	d.DockerOK(t, "run", "-d", "--name", "web", "--link", "db:my-link1", "busybox", "sleep", "300")
	env := d.DockerOK(t, "exec", "web", "env")
	for _, want := range []string{
		"MY_LINK1_NAME=/web/my-link1",
		"MY_LINK1_PORT=tcp://" + dbIP + ":6379",
		"MY_LINK1_PORT_6379_TCP=tcp://" + dbIP + ":6379",
		"MY_LINK1_PORT_6379_TCP_ADDR=" + dbIP,
		"MY_LINK1_PORT_6379_TCP_PORT=6379",
		"MY_LINK1_PORT_6379_TCP_PROTO=tcp",
		"MY_LINK1_ENV_FOO=1",
		"MY_LINK1_ENV_PASSWORD=a=b",
	} {
		assert.Check(t, is.Contains(env, want+"\n"))
	}
	assert.Check(t, !strings.Contains(env, "MY_LINK1_ENV_PATH"), env)
	hosts := d.DockerOK(t, "exec", "web", "cat", "/etc/hosts")
	assert.Check(t, is.Contains(hosts, dbIP+"\tmy-link1 dbhost db\n"))
	assert.Check(t, is.Contains(d.DockerOK(t, "exec", "web", "ping", "-c", "1", "-W", "2", "my-link1"), "1 packets received"))

	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Links}}", "web"), `["/db:/web/my-link1"]`+"\n"))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--no-trunc", "--filter", "name=^db$", "--format", "{{.Names}}"), "db,web/my-link1"))
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{.Name}}", "web/my-link1"), "/db\n"))

	// renames of either side keep the link under the new names
	d.DockerOK(t, "rename", "db", "db2")
	d.DockerOK(t, "rename", "web", "web2")
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Links}}", "web2"), `["/db2:/web2/my-link1"]`+"\n"))
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{.Name}}", "web2/my-link1"), "/db2\n"))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--no-trunc", "--format", "{{.Names}}"), "db2,web2/my-link1"))
	r := d.Docker("inspect", "web/my-link1")
	assert.Check(t, r.ExitCode != 0, "the old link name still resolves")

	// the linked container restarts with another address: the linking
	// container's /etc/hosts follows, as with dockerd
	d.DockerOK(t, "stop", "-t", "0", "db2")
	d.DockerOK(t, "run", "-d", "--name", "filler", "busybox", "sleep", "300") // takes the old address
	d.DockerOK(t, "start", "db2")
	newIP := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db2"))
	assert.Assert(t, newIP != dbIP, "db2 got its old address back; the test cannot tell")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.DockerOK(t, "exec", "web2", "cat", "/etc/hosts"), newIP+"\tmy-link1 ") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	hosts = d.DockerOK(t, "exec", "web2", "cat", "/etc/hosts")
	assert.Check(t, is.Contains(hosts, newIP+"\tmy-link1 dbhost db2\n"))
	assert.Check(t, !strings.Contains(hosts, dbIP+"\tmy-link1"), hosts)

	// a linking container does not start while the linked one is stopped
	d.DockerOK(t, "stop", "-t", "0", "db2", "web2")
	r = d.Docker("start", "web2")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "Cannot link to a non running container: /db2 AS /web2/my-link1"))
	d.DockerOK(t, "start", "db2")
	d.DockerOK(t, "start", "web2")

	// rm --link drops the link; both containers stay
	r = d.Docker("rm", "--link", "db2")
	assert.Check(t, is.Contains(r.Stderr(), "Conflict, cannot remove the default link name of the container"))
	d.DockerOK(t, "rm", "--link", "web2/my-link1")
	assert.Check(t, is.Equal(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Links}}", "web2"), "null\n"))
	assert.Check(t, is.Equal(d.DockerOK(t, "ps", "--no-trunc", "--filter", "name=^db2$", "--format", "{{.Names}}"), "db2\n"))
	r = d.Docker("rm", "--link", "web2/my-link1")
	assert.Check(t, is.Contains(r.Stderr(), "No such container: web2/my-link1"))
	d.DockerOK(t, "stop", "-t", "0", "web2")
	d.DockerOK(t, "start", "web2") // no link left to check
	assert.Check(t, !strings.Contains(d.DockerOK(t, "exec", "web2", "env"), "MY_LINK1_"))
}

// TestLinkCreateErrors: what dockerd refuses at create about links and
// --volumes-from: a missing container is a 400, not a 404 (which would make
// the CLI pull the image); links and the host's network do not mix.
func TestLinkCreateErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "onhost", "--network", "host", "busybox", "sleep", "300")
	d.DockerOK(t, "create", "--name", "bystander", "busybox", "true")
	for _, tc := range []struct {
		body, want string
	}{
		{`{"Image":"busybox","HostConfig":{"Links":["nosuch:x"]}}`, "could not get container for nosuch: No such container: nosuch"},
		{`{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuch"]}}`, "No such container: nosuch"},
		{`{"Image":"busybox","HostConfig":{"Links":["onhost:x"]}}`, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{`{"Image":"busybox","HostConfig":{"NetworkMode":"host","Links":["bystander:x"]}}`, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{`{"Image":"busybox","HostConfig":{"NetworkMode":"container:bystander","Links":["bystander:x"]}}`, "conflicting options: container type network can't be used with links. This would result in undefined behavior"},
		{`{"Image":"busybox","HostConfig":{"Links":["a:b:c"]}}`, "bad format for links: a:b:c"},
	} {
		code, body := apiCall(t, d, "POST", "/containers/create", strings.NewReader(tc.body))
		assert.Check(t, is.Equal(code, 400), "%s: %s", tc.body, body)
		assert.Check(t, is.Contains(body, tc.want))
	}
	r := d.Docker("run", "--rm", "--link", "nosuch:x", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "could not get container for nosuch"))
	assert.Check(t, !strings.Contains(r.Stderr(), "Unable to find image"), "the CLI tried to pull: %s", r.Stderr())
	r = d.Docker("run", "--rm", "--volumes-from", "nosuch", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "No such container: nosuch"))
	assert.Check(t, !strings.Contains(r.Stderr(), "Unable to find image"), "the CLI tried to pull: %s", r.Stderr())
	assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "ps", "-aq")), 2), "a refused create left a container")
}

// TestLinksDockerPy: docker-py's own link tests (create_host_config links,
// remove_container(link=True)) against berthd.
func TestLinksDockerPy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerPy(t, `
import docker
api = docker.from_env().api
ids = []
for n in (1, 2):
    c = api.create_container("busybox", "cat", detach=True, stdin_open=True, environment={"FOO": str(n)}, name="pychild%d" % n)
    api.start(c["Id"])
    ids.append(c["Id"])
c = api.create_container("busybox", "env", host_config=api.create_host_config(links={"pychild1": "mylink1", "pychild2": "mylink2"}, network_mode="bridge"), name="pyparent")
api.start(c["Id"])
assert api.wait(c["Id"])["StatusCode"] == 0
logs = api.logs(c["Id"]).decode()
for want in ("MYLINK1_NAME=/pyparent/mylink1", "MYLINK1_ENV_FOO=1", "MYLINK2_NAME=/pyparent/mylink2", "MYLINK2_ENV_FOO=2"):
    assert want in logs, (want, logs)
links = sorted(api.inspect_container(c["Id"])["HostConfig"]["Links"])
assert links == ["/pychild1:/pyparent/mylink1", "/pychild2:/pyparent/mylink2"], links

p = api.create_container("busybox", "cat", stdin_open=True, host_config=api.create_host_config(links={"pychild1": "mylink"}))
api.start(p["Id"])
pname = api.inspect_container(p["Id"])["Name"][1:]
api.remove_container(pname + "/mylink", link=True)
names = [n for x in api.containers(all=True) for n in x["Names"]]
assert "/" + pname + "/mylink" not in names, names
assert "/pyparent/mylink1" in names, names
assert len([x for x in api.containers(all=True) if x["Id"] in (ids[0], p["Id"])]) == 2

out = docker.from_env().containers.run("busybox", "env", links={"pychild2": "runlink"}, name="pyrun", remove=True)
assert b"RUNLINK_NAME=/pyrun/runlink\n" in out and b"RUNLINK_ENV_FOO=2\n" in out, out
print("ok")
`)
	assert.Check(t, is.Equal(out, "ok"))
}
