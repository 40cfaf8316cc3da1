package integration

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// End-to-end tests of paths a container can change (berth issue 13): each
// reproduces an attack the way a container or a client would make it.

// hostCanary is a host directory with a secret file, which no container
// may read or write through a path it controls.
func hostCanary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("host secret\n"), 0o600))
	return dir
}

func assertCanaryUntouched(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Check(t, is.DeepEqual(names, []string{"secret"}), "the host directory was written to")
	b, err := os.ReadFile(filepath.Join(dir, "secret"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "host secret\n"))
}

// A volume subpath that a container made a symlink out of the volume is
// refused at start and at docker cp, in dockerd's words; it never gives
// the host's files to cp (issue 13 item 1). A subpath symlink that stays
// in the volume works.
func TestSecurityVolumeSubpathSymlink(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	canary := hostCanary(t)
	// the name of a file cp must not write on the host's /
	pwned := "berth-pwned-" + filepath.Base(filepath.Dir(canary))
	t.Cleanup(func() { _ = os.Remove("/" + pwned) })
	d.DockerOK(t, "volume", "create", "vv")
	d.DockerOK(t, "run", "--rm", "-v", "vv:/v", "busybox", "sh", "-c",
		"ln -s / /v/root && ln -s "+canary+" /v/abs && ln -s ../../../../../../.."+canary+" /v/rel && mkdir /v/real && echo inside > /v/real/f && ln -s real /v/good")

	for _, sub := range []string{"root", "abs", "rel"} {
		t.Run(sub, func(t *testing.T) {
			name := "victim-" + sub
			d.DockerOK(t, "create", "--name", name, "--mount", "type=volume,src=vv,dst=/data,volume-subpath="+sub, "busybox", "cat", "/data/secret")

			// docker cp out of it: refused, never the host's file
			r := d.Docker("cp", name+":/data/secret", "-")
			assert.Check(t, r.ExitCode != 0, "cp from: %s", r.Stdout())
			assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
			assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			r = d.Docker("cp", name+":/data/etc/hostname", "-")
			assert.Check(t, r.ExitCode != 0)
			hostname, _ := os.ReadFile("/etc/hostname")
			assert.Check(t, len(hostname) == 0 || !strings.Contains(r.Stdout(), strings.TrimSpace(string(hostname))))

			// docker cp into it: refused, nothing written on the host
			src := filepath.Join(t.TempDir(), pwned)
			assert.NilError(t, os.WriteFile(src, []byte("x"), 0o644))
			r = d.Docker("cp", src, name+":/data/"+pwned)
			assert.Check(t, r.ExitCode != 0)
			assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			code, body := streamsAPI(t, d, http.MethodPut, "/containers/"+name+"/archive?path=/data", bytes.NewReader(oneFileTar(t, pwned)))
			assert.Check(t, is.Equal(code, http.StatusBadRequest), body)
			assert.Check(t, is.Contains(body, "path concatenation escapes the base directory"))

			// start: refused with the same words, a second time too
			for range 2 {
				r = d.Docker("start", "-a", name)
				assert.Check(t, r.ExitCode != 0)
				assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
				assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			}
			d.DockerOK(t, "rm", name)
		})
	}
	assertCanaryUntouched(t, canary)
	_, err := os.Stat("/" + pwned)
	assert.Check(t, os.IsNotExist(err))

	// a symlink that stays in the volume is followed, at start and for cp
	d.DockerOK(t, "create", "--name", "good", "--mount", "type=volume,src=vv,dst=/data,volume-subpath=good", "busybox", "cat", "/data/f")
	assert.Equal(t, d.DockerOK(t, "cp", "good:/data/f", "-") != "", true)
	d.DockerOK(t, "start", "good")
	assert.Equal(t, d.DockerOK(t, "wait", "good"), "0\n")
	assert.Equal(t, d.DockerOK(t, "logs", "good"), "inside\n")
	// a missing subpath is refused, as dockerd does
	d.DockerOK(t, "create", "--name", "missing", "--mount", "type=volume,src=vv,dst=/data,volume-subpath=nope", "busybox", "true")
	r := d.Docker("start", "missing")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "cannot access path"))
}
