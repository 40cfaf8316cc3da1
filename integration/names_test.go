package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A one-letter service name that is also the first hex digit of another
// container's id: `docker exec <svc>` must reach the service, never the
// container whose random id happens to start with it. The collision is
// made on purpose, not left to luck: containers are created until one's id
// starts with a letter, and every other container starting with it goes.
func TestComposeNameBeatsIDPrefix(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	var decoy, letter string
	var made []string
	for i := 0; i < 64 && decoy == ""; i++ {
		id := strings.TrimSpace(d.DockerOK(t, "create", "busybox", "sleep", "1d"))
		made = append(made, id)
		if c := id[:1]; c >= "a" && c <= "f" {
			decoy, letter = id, c
		}
	}
	assert.Assert(t, decoy != "", "64 ids without a letter first")
	for _, id := range made {
		if id != decoy {
			d.DockerOK(t, "rm", id)
		}
	}
	d.DockerOK(t, "start", decoy)
	t.Cleanup(func() { d.Docker("rm", "-f", decoy) })

	dir := t.TempDir()
	write := func(project string) []string {
		file := filepath.Join(dir, project+".yaml")
		assert.NilError(t, os.WriteFile(file, []byte("name: "+project+`
services:
  `+letter+`:
    image: busybox:latest
    pull_policy: never
    command: ["sleep", "1d"]
    stop_signal: SIGKILL
`), 0o644))
		return []string{"-f", file}
	}
	one := write("pfxone")
	d.ComposeOK(t, append(one, "up", "-d")...)
	t.Cleanup(func() { d.Compose(append(one, "down", "-t", "0")...) })

	svcID := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "pfxone-"+letter+"-1"))
	for i := 0; i < 3; i++ {
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", letter)), svcID), "inspect %s", letter)
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "exec", letter, "hostname")), svcID[:12]), "exec %s", letter)
	}
	// the decoy is still reached by a longer prefix and by its short id
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", decoy[:12])), decoy))

	// a second project with the same service: ambiguous, not the decoy
	two := write("pfxtwo")
	d.ComposeOK(t, append(two, "up", "-d")...)
	t.Cleanup(func() { d.Compose(append(two, "down", "-t", "0")...) })
	r := d.Docker("exec", letter, "hostname")
	assert.Check(t, r.ExitCode != 0, "exec %s ran in %s", letter, r.Stdout())
	assert.Check(t, is.Contains(r.Stderr(), "ambiguous name"))
}
