package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func TestVersionAndInfo(t *testing.T) {
	d := testenv.StartDaemon(t)
	out := d.DockerOK(t, "version", "--format", "{{.Server.Platform.Name}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
	assert.Check(t, is.Contains(out, "berth"))
	assert.Check(t, is.Contains(out, "1.24"))

	out = d.DockerOK(t, "info", "--format", "{{json .}}")
	var info map[string]any
	assert.NilError(t, json.Unmarshal([]byte(out), &info))
	assert.Equal(t, info["Driver"], "overlay")
	assert.Equal(t, info["DockerRootDir"], d.DataRoot)
	assert.Check(t, info["NCPU"].(float64) >= 1)
	assert.Check(t, info["MemTotal"].(float64) > 0)
	assert.Check(t, info["KernelVersion"] != "")
	assert.Check(t, info["ID"] != "")
}

func TestVersionedPaths(t *testing.T) {
	d := testenv.StartDaemon(t)
	c := unixClient(d.Sock)
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/_ping", 200, "OK"},
		{"/v1.24/_ping", 200, "OK"},
		{"/v1.41/version", 200, `"ApiVersion"`},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is"},
		{"/v1.12/version", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"},
		{"/v1.41/nosuchthing", 404, `{"message":"page not found"}`},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := c.Get("http://berth" + tc.path)
			assert.NilError(t, err)
			defer resp.Body.Close()
			var sb strings.Builder
			_, _ = io.Copy(&sb, resp.Body)
			assert.Equal(t, resp.StatusCode, tc.status, sb.String())
			assert.Check(t, is.Contains(sb.String(), tc.body))
		})
	}
	resp, err := c.Head("http://berth/_ping")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.Header.Get("OSType"), "linux")
	assert.Check(t, resp.Header.Get("API-Version") != "")
	assert.Equal(t, resp.Header.Get("Docker-Experimental"), "false")
	assert.Check(t, is.Contains(resp.Header.Get("Cache-Control"), "no-cache"))
}

func TestSecondDaemonOnSameSocketRefuses(t *testing.T) {
	d := testenv.StartDaemon(t)
	cmd := exec.Command(testenv.Binary(t), "-H", "unix://"+d.Sock, "--data-root", t.TempDir(), "--exec-root", t.TempDir())
	out, err := cmd.CombinedOutput()
	assert.Check(t, err != nil, "second daemon started: %s", out)
	assert.Check(t, is.Contains(string(out), "already listening"))
	// the first one still answers
	d.DockerOK(t, "version")
}

func TestSystemDiskUsage(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "writer", "-v", "dfvol:/data", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/data/f bs=1k count=300 && dd if=/dev/zero of=/big bs=1k count=200")
	out := d.DockerOK(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Equal(t, len(lines), 4, out)
	assert.Check(t, is.Contains(lines[0], "Images 1 1 "), out)
	assert.Check(t, is.Equal(lines[1], "Containers 1 0 204.8kB 204.8kB (100%)"), out)
	assert.Check(t, is.Contains(lines[2], "Local Volumes 1 1 307.2kB 0B"), out)

	verbose := d.DockerOK(t, "system", "df", "-v")
	assert.Check(t, is.Contains(verbose, "dfvol"))
	assert.Check(t, is.Contains(verbose, "writer"))

	// the new API shape, for clients at 1.52 and later
	c := unixClient(d.Sock)
	resp, err := c.Get("http://berth/v1.56/system/df?type=volume")
	assert.NilError(t, err)
	defer resp.Body.Close()
	var du struct {
		VolumeUsage struct{ TotalSize int64 }
		ImageUsage  *struct{}
	}
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&du))
	assert.Equal(t, du.VolumeUsage.TotalSize, int64(300*1024))
	assert.Check(t, du.ImageUsage == nil)

	d.DockerOK(t, "rm", "writer")
	out = d.DockerOK(t, "volume", "prune", "-af")
	assert.Check(t, is.Contains(out, "dfvol"))
	assert.Check(t, is.Contains(out, "Total reclaimed space: 307.2kB"))
}

// The parts of the API berth does not run answer as an idle dockerd's do, so
// the CLI commands that touch them work (or fail in dockerd's words).
func TestSystemPruneAndIdleSubsystems(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "leftover", "busybox", "sh", "-c", "dd if=/dev/zero of=/f bs=1k count=100")
	d.DockerOK(t, "network", "create", "unused-net")
	d.DockerOK(t, "run", "-d", "--name", "keeper", "busybox", "sleep", "300")

	// ps --size shows the image in the "virtual" size, as with dockerd
	size := d.DockerOK(t, "ps", "-as", "--filter", "name=leftover", "--format", "{{.Size}}")
	assert.Check(t, is.Regexp(`^102kB \(virtual [\d.]+MB\)\n$`, size))

	out := d.DockerOK(t, "system", "prune", "-f")
	assert.Check(t, is.Contains(out, "Deleted Containers:"))
	assert.Check(t, is.Contains(out, "Deleted Networks:\nunused-net"))
	assert.Check(t, is.Contains(out, "Total reclaimed space: 102.4kB"))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}")), "keeper")
	// with the buildx plugin (testenv installs it), builder prune is buildx's
	assert.Check(t, is.Contains(d.DockerOK(t, "builder", "prune", "-f"), "Total:\t0B"))

	assert.Equal(t, d.DockerOK(t, "plugin", "ls", "--format", "{{.Name}}"), "")
	r := d.Docker("node", "ls")
	assert.Check(t, is.Equal(r.ExitCode, 1))
	assert.Check(t, is.Contains(r.Stderr(), "This node is not a swarm manager."))
	r = d.Docker("swarm", "leave")
	assert.Check(t, is.Contains(r.Stderr(), "This node is not part of a swarm"))
}
