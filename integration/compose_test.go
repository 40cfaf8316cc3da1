package integration

import (
	"strings"
	"testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The compose client itself: built from the Go module proxy by the tools
// module, run as the `docker compose` plugin and as `docker-compose`.
func TestComposeClient(t *testing.T) {
	d := testenv.StartDaemon(t)
	out := d.ComposeOK(t, "version", "--short")
	assert.Check(t, is.Equal(strings.TrimSpace(out), compose.ComposeVersion))

	r := d.ComposeStandalone("version")
	assert.NilError(t, r.Error)
	assert.Check(t, is.Contains(r.Stdout(), "v"+compose.ComposeVersion))

	// the plugin is listed by the CLI of this daemon's DOCKER_CONFIG
	out = d.DockerOK(t, "info", "--format", "{{range .ClientInfo.Plugins}}{{.Name}} {{.Version}}{{\"\\n\"}}{{end}}")
	assert.Check(t, is.Contains(out, "compose v"+compose.ComposeVersion))
}
