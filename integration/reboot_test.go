package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// A host reboot (simulated: berthd, every monitor and container process
// killed, mounts gone, exec root emptied, bridges and iptables chains
// removed): always and unless-stopped containers come back, and so does a
// compose deployment, from the images in the local store with no registry
// running, with its network (DNS between services, published port) and
// its volume.
func TestSimulatedRebootBringsBackDeployments(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	reg := testenv.StartRegistry(t, false)
	archive, _ := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "kr/busybox:latest")
	img := reg.Addr + "/kr/busybox:latest"

	dir := t.TempDir()
	compose := `services:
  web:
    image: ` + img + `
    command: ["sh", "-c", "mkdir -p /www && echo web > /www/index.html && httpd -f -p 80 -h /www"]
    restart: always
    ports: ["127.0.0.1::80"]
  worker:
    image: ` + img + `
    command: ["sh", "-c", "echo boot >> /data/boots; exec sleep 3600"]
    restart: unless-stopped
    volumes: ["data:/data"]
volumes:
  data: {}
`
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644))
	up := func() { d.ComposeOK(t, "-p", "shop", "-f", filepath.Join(dir, "compose.yaml"), "up", "-d") }
	up()
	// a volume the local driver mounts (tmpfs): it must be mounted again, not
	// taken as still mounted from before the reboot
	d.DockerOK(t, "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "scratch")
	for _, c := range []struct{ name, policy string }{{"al", "always"}, {"us", "unless-stopped"}, {"us-stopped", "unless-stopped"}, {"plain", "no"}} {
		d.DockerOK(t, "run", "-d", "--name", c.name, "--restart", c.policy, "-v", "scratch:/scratch", img, "sleep", "3600")
	}
	scratchFS := func() string {
		return strings.TrimSpace(d.DockerOK(t, "exec", "al", "sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3"))
	}
	assert.Equal(t, scratchFS(), "tmpfs")
	d.DockerOK(t, "stop", "-t", "0", "us-stopped")
	reg.Stop(t)

	d.SimulateReboot(t)
	d.Start(t)

	for name, want := range map[string]string{"al": "running", "us": "running", "us-stopped": "exited", "plain": "exited",
		"shop-web-1": "running", "shop-worker-1": "running"} {
		assert.Check(t, is.Equal(inspectF(t, d, "{{.State.Status}}", name), want), name)
	}
	assert.Check(t, is.Equal(inspectF(t, d, "{{.State.ExitCode}}", "plain"), "255"))
	assert.Check(t, is.Equal(scratchFS(), "tmpfs"))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "exec", "shop-worker-1", "cat", "/data/boots")), "boot\nboot"))
	out := d.DockerOK(t, "exec", "shop-worker-1", "nslookup", "web")
	assert.Check(t, is.Contains(out, inspectF(t, d, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "shop-web-1")))
	port := strings.TrimSpace(d.ComposeOK(t, "-p", "shop", "-f", filepath.Join(dir, "compose.yaml"), "port", "web", "80"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		body, err := httpGet("http://" + port + "/")
		if err != nil || body != "web" {
			return poll.Continue("GET %s: %q %v", port, body, err)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))
	// compose sees its deployment as it left it: up again changes nothing
	id := inspectF(t, d, "{{.Id}}", "shop-web-1")
	up()
	assert.Equal(t, inspectF(t, d, "{{.Id}}", "shop-web-1"), id)

	inv := d.Inventory(t)
	assert.Check(t, is.Len(inv.Monitors, 4))
	assert.Check(t, is.Len(inv.Cgroups, 4), "cgroups: %v", inv.Cgroups)
	assert.Check(t, is.Len(inv.Veths, 4))
	assert.Check(t, is.Equal(inv.Addresses, 4))
}

// Image drift on redeploy: after the tag moved to a new digest, `docker
// compose pull` + `up -d`, or `up -d` with pull_policy: always, recreate
// the services whose image changed and only those (compose compares the
// image ID it reads through our image inspect with the container's
// com.docker.compose.image label).
func TestComposeRecreatesOnlyDriftedServices(t *testing.T) {
	d := testenv.StartDaemon(t)
	reg := testenv.StartRegistry(t, false)
	push := func(tag, comment string) string {
		p, id := testenv.Image(t, testimage.Options{Tag: "drift:" + comment, Comment: comment})
		reg.Push(t, p, tag)
		return id
	}
	push("drift/base:latest", "base")
	v1 := push("drift/app:latest", "v1")
	dir := t.TempDir()
	write := func(policy string) string {
		f := filepath.Join(dir, "compose-"+policy+".yaml")
		y := "services:\n"
		for _, s := range []string{"app", "base"} {
			y += "  " + s + ":\n    image: " + reg.Addr + "/drift/" + s + ":latest\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
			if policy != "" {
				y += "    pull_policy: " + policy + "\n"
			}
		}
		assert.NilError(t, os.WriteFile(f, []byte(y), 0o644))
		return f
	}
	plain, always := write(""), write("always")
	ids := func() (app, base, appImage string) {
		return inspectF(t, d, "{{.Id}}", "drift-app-1"), inspectF(t, d, "{{.Id}}", "drift-base-1"), inspectF(t, d, "{{.Image}}", "drift-app-1")
	}
	d.ComposeOK(t, "-p", "drift", "-f", plain, "up", "-d")
	app1, base1, img1 := ids()
	assert.Equal(t, img1, v1)

	v2 := push("drift/app:latest", "v2")
	d.ComposeOK(t, "-p", "drift", "-f", plain, "up", "-d") // no pull: nothing changes
	app, base, _ := ids()
	assert.Equal(t, app, app1)
	d.ComposeOK(t, "-p", "drift", "-f", plain, "pull")
	d.ComposeOK(t, "-p", "drift", "-f", plain, "up", "-d")
	app2, base2, img2 := ids()
	assert.Check(t, app2 != app1, "app was not recreated")
	assert.Equal(t, img2, v2)
	assert.Equal(t, base2, base1, "base was recreated")
	_ = base

	v3 := push("drift/app:latest", "v3")
	d.ComposeOK(t, "-p", "drift", "-f", always, "up", "-d")
	app3, base3, img3 := ids()
	assert.Check(t, app3 != app2, "app was not recreated")
	assert.Equal(t, img3, v3)
	assert.Equal(t, base3, base1, "base was recreated")
}
