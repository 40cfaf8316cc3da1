package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLogDriverNone: no log file, `docker logs` and attach-with-logs give
// dockerd's error, the container runs (three times, so a second start of
// the same container is covered), and docker-py's run returns None.
func TestLogDriverNone(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "create", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "hello")
	for i := 0; i < 3; i++ {
		out := d.DockerOK(t, "start", "-a", "quiet")
		assert.Equal(t, strings.TrimSpace(out), "hello", "attached output still flows, start %d", i)
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}", "quiet")), "none|")
	r := d.Docker("logs", "quiet")
	assert.Equal(t, r.ExitCode, 1)
	assert.Check(t, is.Contains(r.Stderr(), "configured logging driver does not support reading"))
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "quiet"))
	ents, err := os.ReadDir(filepath.Join(d.DataRoot, "containers", id))
	assert.NilError(t, err)
	for _, e := range ents {
		assert.Check(t, !strings.Contains(e.Name(), "log"), "no log file: %s", e.Name())
	}

	out := d.DockerPy(t, `
import docker
c = docker.from_env()
print(c.containers.run("busybox", "echo hello", log_config={"type": "none"}, remove=True))
`)
	assert.Equal(t, out, "None")
}

// TestLogDriverLocal: Docker's local format in local-logs/container.log,
// rolled at max-size and compressed by default; docker logs (tail,
// streams, follow) reads it across the rolled files.
func TestLogDriverLocal(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"busybox", "sh", "-c", hundredLines)
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "loc"))
	dir := filepath.Join(d.DataRoot, "containers", id, "local-logs")
	names := func() []string {
		ents, err := os.ReadDir(dir)
		assert.NilError(t, err)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	assert.DeepEqual(t, names(), []string{"container.log", "container.log.1.gz", "container.log.2.gz"})
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.LogPath}}", "loc")), "", "dockerd hides the local driver's path")

	res := d.Docker("logs", "loc")
	assert.Equal(t, res.ExitCode, 0)
	n := consecutive(t, res.Stdout(), 99)
	assert.Check(t, n > 20 && n < 100, "three files' worth: %d", n)
	assert.Equal(t, consecutive(t, d.DockerOK(t, "logs", "--tail", "30", "loc"), 99), 30-1+1, "a tail reaching into the rolled files")
	for i := 0; i < 2; i++ {
		out := d.DockerOK(t, "logs", "--tail", "2", "loc")
		assert.Equal(t, out, "line-98\nline-99\n")
	}
	out := d.DockerOK(t, "logs", "-f", "--tail", "1", "loc")
	assert.Equal(t, out, "line-99\n", "follow of an exited container ends")

	// defaults: 20 MB × 5 compressed, and the container's attributes
	d.DockerOK(t, "run", "--name", "loc2", "--log-driver", "local", "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", "echo hi; echo err >&2")
	res = d.Docker("logs", "--details", "loc2")
	assert.Equal(t, res.Stdout(), "tag=loc2 hi\n")
	assert.Equal(t, res.Stderr(), "tag=loc2 err\n")
	d.DockerOK(t, "run", "-d", "--name", "loc3", "--log-driver", "local", "busybox", "sh", "-c", "echo one; sleep 0.3; echo two; sleep 30")
	waitFor(t, 30*time.Second, func() bool { return d.DockerOK(t, "logs", "loc3") == "one\ntwo\n" })
	d.DockerOK(t, "rm", "-f", "loc3")
}

// TestLogDriverBadInput: an unknown driver and bad options are refused at
// create with dockerd's words (a 400), and nothing is created.
func TestLogDriverBadInput(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-driver", "asdf"}, "logger: no log driver named 'asdf' is registered"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=x"}, "invalid value for max-file: x"},
		{[]string{"--log-driver", "local", "--log-opt", "nope=1"}, "unknown log opt 'nope' for log driver local"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=1"}, "compression cannot be enabled when max file count is 1"},
		{[]string{"--log-opt", "mode=sometimes"}, "logger: logging mode not supported: sometimes"},
		{[]string{"--log-opt", "max-buffer-size=1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=gopher://x"}, "unsupported scheme: 'gopher'"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-facility=nope"}, "invalid syslog facility"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-format=nope"}, "Invalid syslog format"},
		{[]string{"--log-driver", "gelf"}, "gelf-address is a required parameter"},
		{[]string{"--log-driver", "fluentd", "--log-opt", "fluentd-address=unix://"}, "invalid fluentd-address (unix://): path is empty"},
		{[]string{"--log-driver", "syslog", "--log-opt", "cache-disabled=maybe"}, "invalid value for option cache-disabled: maybe"},
	} {
		for i := 0; i < 2; i++ {
			r := d.Docker(append(append([]string{"create", "--name", "bad"}, tc.args...), "busybox", "true")...)
			assert.Equal(t, r.ExitCode, 1, "%v", tc.args)
			assert.Check(t, is.Contains(r.Stderr(), tc.want), "%v", tc.args)
		}
	}
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")

	out := d.DockerPy(t, `
import docker
c = docker.from_env().api
try:
    ctr = c.create_container("busybox", ["true"], host_config=c.create_host_config(log_config=docker.types.LogConfig(type="asdf", config={})))
    c.start(ctr)
    print("created")
except docker.errors.APIError as e:
    print(e.status_code, e.explanation)
`)
	assert.Equal(t, out, "400 logger: no log driver named 'asdf' is registered")
}
