package integration

import (
	"strings"
	"testing"

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
