package integration

import (
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLinksAreTheLinkersNames: --link db:database makes "database" resolve,
// for the linking container only, to the linked container.
func TestLinksAreTheLinkersNames(t *testing.T) {
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
