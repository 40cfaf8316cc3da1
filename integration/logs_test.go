package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// consecutive checks that out is "line-<i>\n" for i up to last, without a
// gap, and returns how many lines there are.
func consecutive(t *testing.T, out string, last int) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	first := last - len(lines) + 1
	for i, l := range lines {
		assert.Equal(t, l, "line-"+strconv.Itoa(first+i), "lines %q", lines)
	}
	return len(lines)
}

const hundredLines = `i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done`

func TestLogRotation(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	for _, compress := range []bool{false, true} {
		name := fmt.Sprintf("rolled-%v", compress)
		d.DockerOK(t, "run", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
			"--log-opt", "compress="+strconv.FormatBool(compress), "busybox", "sh", "-c", hundredLines)
		logPath := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.LogPath}}", name))
		ext := ""
		if compress {
			ext = ".gz"
		}
		for _, rolled := range []string{logPath + ".1" + ext, logPath + ".2" + ext} {
			fi, err := os.Stat(rolled)
			assert.NilError(t, err)
			if !compress {
				// rolled once it reached 1000 bytes (max-size is decimal, as in dockerd)
				assert.Check(t, fi.Size() >= 1000 && fi.Size() < 1100, "%s: %d bytes", rolled, fi.Size())
			}
		}
		_, err := os.Stat(logPath + ".3" + ext)
		assert.Check(t, os.IsNotExist(err), "only max-file files are kept")

		// three files of about 13 entries each: the newest ~35 lines
		n := consecutive(t, d.DockerOK(t, "logs", name), 99)
		assert.Check(t, n > 25 && n < 40, "%d lines", n)
		// a tail longer than the current file reaches into the rolled ones
		assert.Equal(t, consecutive(t, d.DockerOK(t, "logs", "--tail", "20", name), 99), 20)
	}

	// logs -f follows the log across rolls to the container's end, with no gap
	d.DockerOK(t, "run", "-d", "--name", "rolling", "--log-opt", "max-size=500", "--log-opt", "max-file=2",
		"busybox", "sh", "-c", `i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done`)
	r := icmd.RunCmd(d.Cmd("logs", "-f", "rolling"))
	assert.Equal(t, r.ExitCode, 0, r.Stderr())
	consecutive(t, r.Stdout(), 59)
}

func TestLogOptionsInDockersWords(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	before := d.DockerOK(t, "ps", "-aq")
	for _, tc := range []struct {
		opts []string
		msg  string
	}{
		{[]string{"foo=1"}, "unknown log opt 'foo' for json-file log driver"},
		{[]string{"max-size=abc"}, "invalid size: 'abc'"},
		{[]string{"max-size=0"}, "max-size must be a positive number"},
		{[]string{"max-size=1k", "max-file=0"}, "max-file cannot be less than 1"},
		{[]string{"compress=true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
	} {
		args := []string{"run", "--rm"}
		for _, o := range tc.opts {
			args = append(args, "--log-opt", o)
		}
		r := d.Docker(append(args, "busybox", "true")...)
		assert.Check(t, is.Equal(r.ExitCode, 125), "%v", tc.opts)
		assert.Check(t, is.Contains(r.Stderr(), tc.msg))
	}
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), before, "a refused create leaves no container")
}

func TestLogDetails(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "detailed", "--label", "app=web", "-e", "FOO=bar",
		"--log-opt", "labels=app", "--log-opt", "env=FOO,NOPE", "--log-opt", "tag={{.Name}}/{{.ImageName}}",
		"busybox", "sh", "-c", "echo hi; echo err >&2")
	r := icmd.RunCmd(d.Cmd("logs", "--details", "detailed"))
	assert.Equal(t, r.ExitCode, 0, r.Stderr())
	assert.Equal(t, r.Stdout(), "FOO=bar,app=web,tag=detailed%2Fbusybox hi\n")
	assert.Equal(t, r.Stderr(), "FOO=bar,app=web,tag=detailed%2Fbusybox err\n")
	// without the option, the plain lines; without attributes, --details
	// puts only the separating space, as dockerd does
	assert.Equal(t, d.DockerOK(t, "logs", "detailed"), "hi\n")
	d.DockerOK(t, "run", "--name", "plain", "busybox", "echo", "plain")
	assert.Equal(t, d.DockerOK(t, "logs", "--details", "plain"), " plain\n")

	// dockerd's template functions and logger.Info's fields (runtime/logtag)
	d.DockerOK(t, "run", "--name", "funcs", "--label", "com.example.team=blue",
		"--log-opt", `tag={{.Name | upper}}.{{index .ContainerLabels "com.example.team"}}.{{truncate .ID 4}}{{if eq .DaemonName "docker"}}.d{{end}}`,
		"busybox", "echo", "x")
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "funcs"))
	assert.Equal(t, d.DockerOK(t, "logs", "--details", "funcs"), "tag=FUNCS.blue."+id[:4]+".d x\n")

	r = d.Docker("run", "--rm", "--log-opt", "tag={{.Bogus}}", "busybox", "true")
	assert.Check(t, is.Equal(r.ExitCode, 125))
	assert.Check(t, is.Contains(r.Stderr(), "can't evaluate field Bogus"))
	// what a tag cannot use here is refused, not rendered otherwise
	r = d.Docker("run", "--rm", "--log-opt", "tag={{range .ContainerEnv}}{{.}}{{end}}", "busybox", "true")
	assert.Check(t, is.Equal(r.ExitCode, 125))
	assert.Check(t, is.Contains(r.Stderr(), "is not supported in a log tag"))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq", "--filter", "status=created")), ""), "a refused start leaves a created container behind")
}

func TestDaemonDefaultLogOpts(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, "--log-opt", "max-size=1k", "--log-opt", "max-file=2")
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "defaults", "busybox", "sh", "-c", hundredLines)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.LogConfig}}", "defaults")),
		`{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}`)
	n := consecutive(t, d.DockerOK(t, "logs", "defaults"), 99)
	assert.Check(t, n > 13 && n < 27, "two files of about 13 entries: %d lines", n)

	// a container's own options win over the daemon's
	d.DockerOK(t, "run", "--name", "own", "--log-opt", "max-file=1", "busybox", "sh", "-c", hundredLines)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.LogConfig.Config}}", "own")),
		`{"max-file":"1","max-size":"1k"}`)
	n = consecutive(t, d.DockerOK(t, "logs", "own"), 99)
	assert.Check(t, n < 14, "one file: %d lines", n)
}
