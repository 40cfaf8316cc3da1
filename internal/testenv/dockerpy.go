package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// DockerPy runs a Python script with Debian's docker-py (python3-docker)
// against this daemon and returns its output; a non-zero exit fails the
// test. It uses /usr/bin/python3, the interpreter the Debian package is
// installed for (a python3 earlier on PATH may lack it or have another
// docker-py).
func (d *Daemon) DockerPy(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", script}, args...)...)
	cmd.Env = d.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-py script failed: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
