package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// shimLog is the monitor's log of a running container.
func shimLog(t *testing.T, d *testenv.Daemon, name string) string {
	t.Helper()
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", name))
	b, _ := os.ReadFile(filepath.Join(d.ExecRoot, "c", id[:24], "shim.log"))
	return string(b)
}

// TestRuntimes: --add-runtime; docker info lists the runtimes; docker run
// --runtime crun runs with crun where the host allows it and says why not
// where it does not; a runtime of its own root runs, execs, pauses and
// stops; the exec fast path follows the runtime's version, not its name;
// unknown runtimes and missing binaries are refused at create with nothing
// made.
func TestRuntimes(t *testing.T) {
	crun, err := exec.LookPath("crun")
	assert.NilError(t, err, "scripts/deps.sh installs crun")
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	// a runc that says it is another version, under the name runc; and
	// runc 1.1 under another name
	dir := shortTempDir(t)
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "fake"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "fake", "runc"), []byte("#!/bin/sh\n"+
		"if [ \"$1\" = --version ]; then echo 'runc version 1.2.0'; exit 0; fi\nexec "+runc+" \"$@\"\n"), 0o755))
	assert.NilError(t, os.Symlink(runc, filepath.Join(dir, "other")))
	notrunc, renamed := filepath.Join(dir, "fake", "runc"), filepath.Join(dir, "other")

	d := testenv.StartDaemon(t, "--add-runtime", "crun="+crun, "--add-runtime", "notrunc="+notrunc,
		"--add-runtime", "renamed="+renamed, "--add-runtime", "ghost=/nonexistent/ghost")
	d.LoadBusybox(t)
	out := d.DockerOK(t, "info", "--format", "{{range $k, $v := .Runtimes}}{{$k}}={{$v.Path}} {{end}}|{{.DefaultRuntime}}")
	assert.Equal(t, strings.TrimSpace(out), "crun="+crun+" ghost=/nonexistent/ghost notrunc="+notrunc+" renamed="+renamed+" runc=runc |runc")

	for i := 0; i < 2; i++ {
		r := d.Docker("run", "--rm", "--runtime", "crun", "busybox", "echo", "hi")
		if r.ExitCode == 0 {
			assert.Equal(t, r.Stdout(), "hi\n")
			continue
		}
		// this host's cgroups or crun's version: said as such, nothing made
		assert.Check(t, is.Contains(r.Stderr(), "runtime crun cannot run containers on this host: "), r.Combined())
		assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")
	}

	d.DockerOK(t, "run", "-d", "--name", "c1", "--runtime", "renamed", "busybox", "sleep", "300")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.Runtime}}", "c1")), "renamed")
	for i := 0; i < 2; i++ {
		assert.Equal(t, d.DockerOK(t, "exec", "c1", "echo", "in"), "in\n")
	}
	// runc 1.1 under another name: the fast path
	assert.Check(t, !strings.Contains(shimLog(t, d, "c1"), "execs go through"), shimLog(t, d, "c1"))
	_, err = os.Stat(filepath.Join(d.ExecRoot, "runtimes", "renamed"))
	assert.NilError(t, err, "the runtime's own state directory")
	d.DockerOK(t, "pause", "c1")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "c1")), "paused")
	d.DockerOK(t, "unpause", "c1")
	assert.Equal(t, d.DockerOK(t, "exec", "c1", "echo", "again"), "again\n")

	// the name says runc, the version does not: no fast path
	d.DockerOK(t, "run", "-d", "--name", "c2", "--runtime", "notrunc", "busybox", "sleep", "300")
	assert.Equal(t, d.DockerOK(t, "exec", "c2", "echo", "in"), "in\n")
	assert.Check(t, is.Contains(shimLog(t, d, "c2"), "execs go through "+notrunc+": the fast path is not proven"))
	d.DockerOK(t, "rm", "-f", "c1", "c2")

	for _, tc := range []struct {
		runtime, want string
		exit          int // the CLI's: 127 for a "no such file" message
	}{
		{"nope", "unknown or invalid runtime name: nope", 125},
		{"ghost", "runtime ghost: exec: \"/nonexistent/ghost\": stat /nonexistent/ghost: no such file or directory", 127},
	} {
		r := d.Docker("run", "--runtime", tc.runtime, "busybox", "true")
		assert.Equal(t, r.ExitCode, tc.exit, r.Combined())
		assert.Check(t, is.Contains(r.Stderr(), tc.want))
	}
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")
}

// TestDefaultRuntime: containers that name no runtime get the default one;
// a default that does not exist, or a reserved name, stop berthd at start
// in dockerd's words.
func TestDefaultRuntime(t *testing.T) {
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	d := testenv.StartDaemon(t, "--add-runtime", "mine="+runc, "--default-runtime", "mine")
	d.LoadBusybox(t)
	assert.Equal(t, d.DockerOK(t, "run", "--name", "dflt", "busybox", "echo", "ok"), "ok\n")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.Runtime}}", "dflt")), "mine")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.DefaultRuntime}}")), "mine")

	empty := filepath.Join(t.TempDir(), "daemon.json")
	assert.NilError(t, os.WriteFile(empty, []byte("{}"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--default-runtime", "nope"}, "specified default runtime 'nope' does not exist"},
		{[]string{"--add-runtime", "runc=/usr/bin/crun"}, "runtime name 'runc' is reserved"},
		{[]string{"--add-runtime", "broken"}, "invalid runtime: broken"},
	} {
		out, err := exec.Command(testenv.Binary(t), append([]string{"-H", "unix://" + filepath.Join(shortTempDir(t), "s.sock"),
			"--config-file", empty, "--data-root", t.TempDir(), "--exec-root", t.TempDir()}, tc.args...)...).CombinedOutput()
		_ = err
		assert.Check(t, is.Contains(string(out), tc.want))
	}
}
