package integration

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// classic runs a docker CLI command with the classic builder, as
// DOCKER_BUILDKIT=0 users do, in dir.
func classic(d *testenv.Daemon, dir string, args ...string) *icmd.Result {
	c := d.Cmd(args...)
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Dir = dir
	return icmd.RunCmd(c)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		assert.NilError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func TestClassicBuild(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hello.txt": "hello\n", "tree/a": "a\n", "tree/sub/b": "b\n",
		"Dockerfile": `ARG BASE=busybox
FROM $BASE AS first
ARG GREETING=hi
ENV WHO=world
RUN echo "$GREETING $WHO" > /greeting
WORKDIR /app
COPY hello.txt .
COPY tree /app/tree/
COPY --chown=1000:1000 hello.txt /owned
ADD bundle.tar /unpacked/
LABEL stage=first
EXPOSE 8080
CMD ["cat", "/greeting"]

FROM busybox
COPY --from=first /greeting /copied
USER 1000
CMD ["cat", "/copied"]
`,
	})
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "bundle.tar"), tarball(t, map[string]string{"in/tar.txt": "from tar\n"}), 0o644))

	r := classic(d, dir, "build", "--target", "first", "--build-arg", "GREETING=hey", "-t", "built:first", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "Step 13/13 : CMD [\"cat\", \"/greeting\"]"))
	assert.Check(t, is.Contains(r.Stdout(), "Successfully tagged built:first"))
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:first"), "hey world\n")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:first", "sh", "-c",
		"pwd; cat hello.txt tree/sub/b /unpacked/in/tar.txt; stat -c '%u:%g' /owned hello.txt"),
		"/app\nhello\nb\nfrom tar\n1000:1000\n0:0\n")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{json .Config.Labels}} {{json .Config.ExposedPorts}} {{json .Config.Env}}", "built:first"),
		`{"stage":"first"} {"8080/tcp":{}} ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","WHO=world"]`+"\n")

	// the whole file: the last stage copies from the first
	r = classic(d, dir, "build", "-q", "-t", "built:last", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Regexp(`^sha256:[0-9a-f]{64}\n$`, r.Stdout()))
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:last"), "hi world\n")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:last", "id", "-u"), "1000\n")

	// FROM scratch, with a static busybox from a stage
	writeFiles(t, dir, map[string]string{"Tiny.Dockerfile": `FROM busybox AS tools
FROM scratch
COPY --from=tools /bin/busybox /busybox
ENTRYPOINT ["/busybox"]
CMD ["echo", "tiny"]
`})
	r = classic(d, dir, "build", "-f", "Tiny.Dockerfile", "-t", "built:tiny", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:tiny"), "tiny\n")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{len .RootFS.Layers}}", "built:tiny"), "1\n")

	// ONBUILD triggers run in the child's build, right after its FROM
	writeFiles(t, dir, map[string]string{
		"Base.Dockerfile":  "FROM busybox\nONBUILD RUN echo triggered > /onbuild\n",
		"Child.Dockerfile": "FROM built:base\nCMD [\"cat\", \"/onbuild\"]\n",
	})
	r = classic(d, dir, "build", "-f", "Base.Dockerfile", "-t", "built:base", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	r = classic(d, dir, "build", "-f", "Child.Dockerfile", "-t", "built:child", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "# Executing 1 build trigger"))
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "built:child"), "triggered\n")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{json .Config.OnBuild}}", "built:child"), "null\n")
	d.DockerOK(t, "rmi", "built:base", "built:child")

	// a symlink in the context cannot reach the host's files
	assert.NilError(t, os.Symlink("/etc", filepath.Join(dir, "hostetc")))
	writeFiles(t, dir, map[string]string{"Leak.Dockerfile": "FROM busybox\nCOPY hostetc/hostname /leak\n"})
	r = classic(d, dir, "build", "-f", "Leak.Dockerfile", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "COPY failed: file not found in build context"))

	// the steps' containers are gone; the steps' images stay as the build
	// cache, listed with -a only (intermediate images), as with dockerd
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")
	images := d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	got := strings.Fields(images)
	sort.Strings(got)
	// the first stage of built:last is dangling (no tag, no child), as
	// dockerd leaves it
	assert.Check(t, is.DeepEqual(got, []string{"<none>:<none>", "built:first", "built:last", "built:tiny", "busybox:latest"}))
	all := strings.Fields(d.DockerOK(t, "images", "-a", "--format", "{{.Repository}}:{{.Tag}}"))
	assert.Check(t, len(all) > 10, "intermediate images: %v", all)
	assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "images", "-q", "--filter", "dangling=true")), 1), "intermediate images are not dangling")

	// a failing RUN: dockerd's message and its exit code; with rm (the
	// default) the failed step's container stays for a look, as dockerd
	// leaves it; the image of the step before it stays (the cache)
	c := d.Cmd("build", "-")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Stdin = strings.NewReader("FROM busybox\nRUN touch /x\nRUN exit 3\n")
	r = icmd.RunCmd(c)
	assert.Check(t, is.Equal(r.ExitCode, 3))
	assert.Check(t, is.Contains(r.Stderr(), "The command '/bin/sh -c exit 3' returned a non-zero code: 3"))
	left := d.DockerOK(t, "ps", "-a", "--format", "{{.Command}} {{.Status}}")
	assert.Check(t, is.Contains(left, "exit 3"))
	assert.Check(t, is.Contains(left, "Exited (3)"))
	d.DockerOK(t, "container", "prune", "-f")
	// --force-rm: none stays
	c = d.Cmd("build", "--force-rm", "-")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Stdin = strings.NewReader("FROM busybox\nRUN touch /x\nRUN exit 3\n")
	r = icmd.RunCmd(c)
	assert.Check(t, is.Equal(r.ExitCode, 3))
	assert.Check(t, is.Contains(r.Stdout(), "Using cache"), "the first RUN is cached")
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")

	r = classic(d, dir, "build", "-f", "nope.Dockerfile", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "nope.Dockerfile"))
	c = d.Cmd("build", "-")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Stdin = strings.NewReader("FROM busybox\nCOPY missing /x\n")
	r = icmd.RunCmd(c)
	assert.Check(t, is.Contains(r.Stderr(), "COPY failed: file not found in build context"))
}

func TestClassicBuildFromCompose(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.InstallCompose(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app/Dockerfile": "FROM busybox\nARG MSG=default\nRUN echo \"$MSG\" > /msg\nCMD [\"cat\", \"/msg\"]\n",
		"compose.yaml":   "services:\n  app:\n    build:\n      context: ./app\n      args:\n        MSG: from-compose\n    image: cbuild-app:latest\n",
	})
	c := d.ComposeCmd("-p", "cbuild", "up")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Dir = dir
	r := icmd.RunCmd(c)
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "from-compose"))
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{index .Config.Labels \"com.docker.compose.image.builder\"}}", "cbuild-app"), "classic\n")
	d.ComposeOK(t, "-p", "cbuild", "down")

	out := d.DockerPy(t, `
import docker, io
c = docker.from_env()
img, logs = c.images.build(fileobj=io.BytesIO(b'FROM busybox\nRUN echo py > /py\nCMD ["cat","/py"]\n'), tag="pybuilt:1", rm=True)
assert "pybuilt:1" in img.tags, img.tags
print(c.containers.run("pybuilt:1", remove=True).decode().strip())
`)
	assert.Equal(t, out, "py")
}
