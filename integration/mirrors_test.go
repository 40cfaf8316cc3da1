package integration

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRegistryMirrors: Docker Hub pulls go to the registry-mirrors in
// order, past a dead one to the next; /info lists them; a bad mirror URL
// stops berthd at start.
func TestRegistryMirrors(t *testing.T) {
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:mirrored")
	dead := deadAddr(t)
	d := testenv.StartDaemon(t, "--registry-mirror", "http://"+dead, "--registry-mirror", "http://"+reg.Addr)

	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.RegistryConfig.Mirrors}}")),
		"[http://"+dead+" http://"+reg.Addr+"]")
	for i, want := range []string{"Status: Downloaded newer image for busybox:mirrored", "Status: Image is up to date for busybox:mirrored"} {
		r := d.Docker("pull", "busybox:mirrored")
		assert.Assert(t, r.ExitCode == 0, "pull %d: %s", i, r.Combined())
		assert.Check(t, is.Contains(r.Stdout(), want))
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.ID}}", "docker.io/library/busybox:mirrored")), id)
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "busybox:mirrored", "echo", "from the mirror"), "from the mirror\n")

	// what no mirror has falls back to Docker Hub, which this machine
	// cannot reach: an error, and nothing pulled
	r := d.Docker("pull", "busybox:nowhere")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, d.Docker("image", "inspect", "busybox:nowhere").ExitCode != 0)
}

// TestRegistryMirrorsReload: SIGHUP reloads daemon.json's registry-mirrors
// (as dockerd does); a bad one leaves the old ones.
func TestRegistryMirrorsReload(t *testing.T) {
	reg := testenv.StartRegistry(t, false)
	archive, _ := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:reloaded")
	dead := deadAddr(t)
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	writeJSON(t, cfg, map[string]any{"registry-mirrors": []string{"http://" + dead}})
	d := testenv.StartDaemon(t, "--config-file", cfg)
	r := d.Docker("pull", "busybox:reloaded")
	assert.Check(t, r.ExitCode != 0, "the only mirror is dead and Docker Hub is out of reach")

	reloads := 0
	hup := func() {
		reloads++
		n := reloads
		assert.NilError(t, syscall.Kill(d.Pid(), syscall.SIGHUP))
		waitFor(t, 30*time.Second, func() bool {
			l := d.Log()
			return strings.Count(l, "Reloaded configuration")+strings.Count(l, "Error reconfiguring the daemon") >= n
		})
	}
	writeJSON(t, cfg, map[string]any{"registry-mirrors": []string{"http://" + dead, "http://" + reg.Addr}})
	hup()
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.RegistryConfig.Mirrors}}")), "[http://"+dead+" http://"+reg.Addr+"]")
	r = d.Docker("pull", "busybox:reloaded")
	assert.Check(t, r.ExitCode == 0, r.Combined())

	writeJSON(t, cfg, map[string]any{"registry-mirrors": []string{"gopher://x"}})
	hup()
	assert.Check(t, is.Contains(d.Log(), "invalid mirror: unsupported scheme"))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.RegistryConfig.Mirrors}}")), "[http://"+dead+" http://"+reg.Addr+"]")
}
