package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

const cacheDockerfile = `FROM busybox
ENV APP=/app
WORKDIR /app
COPY conf.txt /etc/app.conf
COPY src/ ./src/
RUN cat /etc/app.conf src/* > /combined
EXPOSE 8000-8002
CMD ["cat", "/combined"]
`

// builtID is the short image ID of "Successfully built <id>".
func builtID(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})`).FindStringSubmatch(out)
	assert.Assert(t, m != nil, out)
	return m[1]
}

// TestClassicBuildCache: a second build of an unchanged context uses the
// cache for every step and gives the same image; a changed file reruns
// from its COPY on; --no-cache and --cache-from do what dockerd's do.
func TestClassicBuildCache(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": cacheDockerfile, "conf.txt": "conf\n", "src/a": "a\n", "src/b": "b\n",
	})
	steps := strings.Count(cacheDockerfile, "\n")

	r := classic(d, dir, "build", "-t", "cached:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	first := builtID(t, r.Stdout())
	assert.Check(t, !strings.Contains(r.Stdout(), "Using cache"))
	// every step made an image: ENV, WORKDIR, ... each "---> <id>"
	assert.Check(t, is.Equal(strings.Count(r.Stdout(), " ---> Running in "), 2), "WORKDIR and RUN ran in containers (COPY writes the layer): %s", r.Stdout())
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "cached:1"), "conf\na\nb\n")
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{json .Config.ExposedPorts}} {{.Config.WorkingDir}}", "cached:1"),
		`{"8000/tcp":{},"8001/tcp":{},"8002/tcp":{}} /app`+"\n")

	// history names each step's image (and busybox's), as dockerd's
	var named int
	for _, id := range strings.Fields(d.DockerOK(t, "history", "-q", "cached:1")) {
		if id != "<missing>" {
			named++
		}
	}
	assert.Check(t, is.Equal(named, steps))

	// the second and third time: all from the cache, the same image
	for i := 0; i < 2; i++ {
		r = classic(d, dir, "build", "-t", "cached:1", ".")
		assert.Equal(t, r.ExitCode, 0, r.Combined())
		assert.Check(t, is.Equal(strings.Count(r.Stdout(), " ---> Using cache\n"), steps-1), r.Stdout())
		assert.Check(t, !strings.Contains(r.Stdout(), "Running in"))
		assert.Check(t, is.Equal(builtID(t, r.Stdout()), first))
	}

	// one file changed: the steps before its COPY from the cache, the rest run
	writeFiles(t, dir, map[string]string{"src/b": "b changed\n"})
	r = classic(d, dir, "build", "-t", "cached:2", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(strings.Count(r.Stdout(), " ---> Using cache\n"), 3), r.Stdout())
	assert.Check(t, is.Regexp(`Step 5/8 : COPY src/ ./src/\n ---> [0-9a-f]{12}\n`, r.Stdout()))
	second := builtID(t, r.Stdout())
	assert.Check(t, second != first)
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "cached:2"), "conf\na\nb changed\n")
	// and it is cached in its turn; the first version still is too
	r = classic(d, dir, "build", "-q", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), second))
	writeFiles(t, dir, map[string]string{"src/b": "b\n"})
	r = classic(d, dir, "build", ".")
	assert.Check(t, is.Equal(builtID(t, r.Stdout()), first))

	// --no-cache: every step runs, a new image
	r = classic(d, dir, "build", "--no-cache", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, !strings.Contains(r.Stdout(), "Using cache"))
	assert.Check(t, builtID(t, r.Stdout()) != first)

	// rmi of the tags takes the intermediate images with them
	d.DockerOK(t, "rmi", "cached:1", "cached:2")
	d.DockerOK(t, "image", "prune", "-f")
	assert.Equal(t, d.DockerOK(t, "images", "-qa"), strings.Fields(d.DockerOK(t, "images", "-q", "busybox"))[0]+"\n")
}

// TestClassicBuildCacheFrom: an image that was not built here (saved and
// loaded again, so without its parents) serves as the cache of a build
// that names it with --cache-from, by its history.
func TestClassicBuildCacheFrom(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": cacheDockerfile, "conf.txt": "conf\n", "src/a": "a\n", "src/b": "b\n",
	})
	r := classic(d, dir, "build", "-t", "origin:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	id := d.DockerOK(t, "inspect", "-f", "{{.Id}}", "origin:1")
	archive := filepath.Join(t.TempDir(), "origin.tar")
	d.DockerOK(t, "save", "-o", archive, "origin:1")
	d.DockerOK(t, "rmi", "origin:1")
	d.DockerOK(t, "load", "-i", archive)
	assert.Equal(t, d.DockerOK(t, "images", "-qa", "--no-trunc"), strings.Join(sortedLines(d.DockerOK(t, "images", "-q", "--no-trunc")), "\n")+"\n", "no intermediate images")

	// without --cache-from, nothing is cached
	r = classic(d, dir, "build", ".")
	assert.Check(t, !strings.Contains(r.Stdout(), "Using cache"), r.Stdout())
	// with it, every step; the result is the loaded image itself
	r = classic(d, dir, "build", "--cache-from", "origin:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(strings.Count(r.Stdout(), " ---> Using cache\n"), strings.Count(cacheDockerfile, "\n")-1), r.Stdout())
	assert.Check(t, is.Equal("sha256:"+builtID(t, r.Stdout()), id[:len("sha256:")+12]))
}

func sortedLines(s string) []string {
	lines := strings.Fields(s)
	return lines
}

// TestClassicBuildIntermediateContainers: rm=false keeps the steps'
// containers; otherwise they are gone when the build's answer ends, so a
// client listing containers right after sees none.
func TestClassicBuildIntermediateContainers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo one\nCOPY Dockerfile /df\nRUN echo two\n"})

	for i := 0; i < 3; i++ {
		r := classic(d, dir, "build", "--no-cache", ".")
		assert.Equal(t, r.ExitCode, 0, r.Combined())
		assert.Check(t, is.Equal(strings.Count(r.Stdout(), " ---> Removed intermediate container "), 2), r.Stdout())
		assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "", "build %d", i)
	}
	r := classic(d, dir, "build", "--no-cache", "--rm=false", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, !strings.Contains(r.Stdout(), "Removed intermediate container"))
	assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "ps", "-aq")), 2), "the two RUN steps'")

	out := d.DockerPy(t, `
import docker
c = docker.from_env()
before = len(c.containers.list(all=True))
img, logs = c.images.build(path=`+"r'"+dir+"'"+`, rm=True, nocache=True)
print(len(c.containers.list(all=True)) - before, any('Removed intermediate' in l.get('stream', '') for l in logs))
img2, logs = c.images.build(path=`+"r'"+dir+"'"+`, rm=True)
print(img2.id == img.id, sum('Using cache' in l.get('stream', '') for l in logs))
img3, logs = c.images.build(path=`+"r'"+dir+"'"+`, rm=True, cache_from=[img.id])
print(img3.id == img.id, sum('Using cache' in l.get('stream', '') for l in logs))
before = len(c.containers.list(all=True))
img4, logs = c.images.build(path=`+"r'"+dir+"'"+`, nocache=True)
print(img4.id != img.id, len(c.containers.list(all=True)) - before)
`)
	// docker-py's rm defaults to False: dockerd keeps the containers then
	assert.Equal(t, out, "0 True\nTrue 3\nTrue 3\nTrue 2")
}

// TestClassicBuildContextRules: .dockerignore can drop the Dockerfile and
// itself; COPY . keeps the destination's mode; a symlink source is named
// as itself, in the context and with --from; COPY into a VOLUME stays;
// RUN gets --add-host and --network, and its stderr comes in red.
func TestClassicBuildContextRules(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	assert.NilError(t, os.Chmod(dir, 0o700))
	writeFiles(t, dir, map[string]string{
		".dockerignore": "Dockerfile\n.dockerignore\nsecret\n",
		"secret":        "no\n",
		"real.txt":      "real\n",
		"Dockerfile": `FROM busybox
VOLUME /data
COPY real.txt /data/in-volume
COPY . /app
COPY link.txt /linked/
RUN echo to-stderr >&2 && grep -c myhost /etc/hosts && (ip -o link show | grep -c eth0 || true)
`,
	})
	assert.NilError(t, os.Symlink("real.txt", filepath.Join(dir, "link.txt")))
	r := classic(d, dir, "build", "--add-host", "myhost:10.9.9.9", "--network", "none", "-t", "rules:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	out := d.DockerOK(t, "run", "--rm", "-v", "/data", "rules:1", "sh", "-c",
		"ls -A /app; stat -c %a /app; cat /linked/link.txt; ls /linked; cat /data/in-volume")
	assert.Equal(t, out, "link.txt\nreal.txt\n755\nreal\nlink.txt\nreal\n")

	// the raw stream: stderr wrapped as dockerd wraps it; host and network applied
	py := d.DockerPy(t, `
import docker, json
api = docker.from_env().api
text = ''
for chunk in api.build(path=`+"r'"+dir+"'"+`, decode=True, nocache=True, extra_hosts={'myhost': '10.9.9.9'}, network_mode='none'):
    text += chunk.get('stream', '')
print(json.dumps(text))
`)
	// the step's stdout and stderr are two streams: their order is the
	// scheduler's (as with dockerd); the stderr chunk is wrapped whole, and
	// without it the step printed what grep counted
	const stderrChunk = `\u001b[91mto-stderr\n\u001b[0m`
	m := regexp.MustCompile(`Running in [0-9a-f]{12}\\n(.*?) ---> `).FindStringSubmatch(py)
	assert.Assert(t, m != nil, py)
	assert.Check(t, is.Equal(strings.Count(m[1], stderrChunk), 1), py)
	assert.Check(t, is.Equal(strings.Replace(m[1], stderrChunk, "", 1), `1\n0\n`), py)

	// COPY --from of a symlink: followed in the stage's filesystem
	writeFiles(t, dir, map[string]string{"From.Dockerfile": `FROM busybox AS tools
RUN ln -s /bin/busybox /bin/bb && ln -s bb /bin/bb2
FROM scratch
COPY --from=tools /bin/bb2 /bin/echo
ENTRYPOINT ["/bin/echo"]
`})
	r = classic(d, dir, "build", "-f", "From.Dockerfile", "-t", "rules:from", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "rules:from", "via", "link"), "via link\n")
}

// TestClassicBuildErrors: dockerd's words for an empty Dockerfile, an
// invalid platform and target; a Dockerfile that is a symlink to a host
// file reads nothing outside the context.
func TestClassicBuildErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Empty.Dockerfile": "", "Dockerfile": "FROM busybox\n", "sub/Real": "FROM busybox\nLABEL via=link\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", "Empty.Dockerfile"}, "the Dockerfile (Empty.Dockerfile) cannot be empty"},
		{[]string{"--platform", "not/a/real/platform"}, "not/a/real/platform"},
		{[]string{"--platform", "linux/s390x"}, "not linux/s390x"},
		{[]string{"--target", "nope"}, `target stage "nope" could not be found`},
		{[]string{"-t", "Bad:Tag"}, "invalid reference format"},
	} {
		r := classic(d, dir, append(append([]string{"build"}, tc.args...), ".")...)
		assert.Check(t, r.ExitCode != 0, tc.args)
		assert.Check(t, is.Contains(r.Stderr(), tc.want), tc.args)
	}

	// a Dockerfile that links to the host's /etc/shadow: resolved inside
	// the context, where there is none
	assert.NilError(t, os.Symlink("/etc/shadow", filepath.Join(dir, "Shadow.Dockerfile")))
	assert.NilError(t, os.Symlink("sub/Real", filepath.Join(dir, "Link.Dockerfile")))
	out := d.DockerPy(t, `
import docker, io, tarfile
c = docker.from_env().api
def ctx(link):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        ti = tarfile.TarInfo('Dockerfile'); ti.type = tarfile.SYMTYPE; ti.linkname = link
        tf.addfile(ti)
    buf.seek(0)
    return buf
for link in ['/etc/shadow', '../../../../../../etc/shadow']:
    try:
        print(list(c.build(fileobj=ctx(link), custom_context=True, decode=True)))
    except docker.errors.APIError as e:
        print(e.status_code, e.explanation)
`)
	assert.Check(t, is.Equal(out, "400 Cannot locate specified Dockerfile: Dockerfile\n400 Cannot locate specified Dockerfile: Dockerfile"))

	// a context whose entries go through a symlink to a host directory
	// writes nothing there
	host := t.TempDir()
	out = d.DockerPy(t, `
import docker, io, tarfile
c = docker.from_env().api
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w') as tf:
    ti = tarfile.TarInfo('esc'); ti.type = tarfile.SYMTYPE; ti.linkname = `+"r'"+host+"'"+`
    tf.addfile(ti)
    for name, body in (('esc/pwned', b'x'), ('Dockerfile', b'FROM busybox\n')):
        ti = tarfile.TarInfo(name); ti.size = len(body); tf.addfile(ti, io.BytesIO(body))
buf.seek(0)
try:
    print([l for l in c.build(fileobj=buf, custom_context=True, decode=True) if 'error' in l])
except docker.errors.APIError as e:
    print(e.status_code)
`)
	left, err := os.ReadDir(host)
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0), "docker-py: %s", out)
	assert.Check(t, !strings.Contains(out, "root:"))
	r := classic(d, dir, "build", "-f", "Link.Dockerfile", "-t", "via:link", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{.Config.Labels.via}}", "via:link"), "link\n")
}

// TestClassicBuildLimits: a context over --max-upload-size, plain or a
// small compressed bomb, is refused with a clear error and leaves nothing
// in the daemon's build directory; load and import have the same limit.
func TestClassicBuildLimits(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t, "--max-upload-size", "4194304")
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY big /big\n", "big": strings.Repeat("x", 5<<20)})
	r := classic(d, dir, "build", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "build context is larger than the daemon's limit of 4194304 bytes"))

	out := d.DockerPy(t, `
import docker, io, tarfile, gzip
c = docker.from_env().api
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode='w') as tf:
    df = b'FROM busybox\n'
    ti = tarfile.TarInfo('Dockerfile'); ti.size = len(df); tf.addfile(ti, io.BytesIO(df))
    ti = tarfile.TarInfo('zeros'); ti.size = 64 << 20; tf.addfile(ti, io.BytesIO(bytes(64 << 20)))
bomb = gzip.compress(raw.getvalue())
print(len(bomb) < 1 << 20)
try:
    list(c.build(fileobj=io.BytesIO(bomb), custom_context=True, encoding='gzip', decode=True))
except docker.errors.APIError as e:
    print(e.status_code, e.explanation)
for kind, fn in [('load', lambda: list(c.load_image(bytes(5 << 20)))), ('import', lambda: c.import_image_from_data(bytes(5 << 20)))]:
    try:
        print(kind, fn())
    except docker.errors.APIError as e:
        print(kind, e.status_code, e.explanation)
`)
	lines := strings.Split(out, "\n")
	assert.Assert(t, is.Len(lines, 4), out)
	assert.Check(t, is.Equal(lines[0], "True"))
	assert.Check(t, is.Equal(lines[1], "400 build context is larger than the daemon's limit of 4194304 bytes (berthd --max-upload-size)"))
	assert.Check(t, is.Contains(lines[2], "image archive is larger than the daemon's limit"))
	assert.Check(t, is.Contains(lines[3], "import 400 tarball is larger than the daemon's limit"))
	left, err := os.ReadDir(filepath.Join(d.DataRoot, "build"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0))
	left, err = os.ReadDir(filepath.Join(d.DataRoot, "tmp"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0))
}

// TestClassicBuildScratchConcurrent: builds FROM scratch at the same time
// share the scratch base; none loses it to another's end.
func TestClassicBuildScratchConcurrent(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "x\n"})
	done := make(chan *icmd.Result)
	for i := 0; i < 3; i++ {
		go func(i int) {
			df := filepath.Join(dir, "D"+strings.Repeat("x", i))
			_ = os.WriteFile(df, []byte("FROM scratch\nCOPY f /f\nLABEL n="+strings.Repeat("1", i+1)+"\n"), 0o644)
			done <- classic(d, dir, "build", "-q", "-f", filepath.Base(df), ".")
		}(i)
	}
	for i := 0; i < 3; i++ {
		r := <-done
		assert.Check(t, is.Equal(r.ExitCode, 0), r.Combined())
	}
	c := d.Cmd("build", "-")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Stdin = strings.NewReader("FROM scratch\n")
	r := icmd.RunCmd(c)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "No image was generated. Is your Dockerfile empty?"))
	// the scratch base (no layer, 0B) is no image of the user's
	assert.Check(t, !strings.Contains(d.DockerOK(t, "images", "-a", "--format", "{{.Size}}"), "0B"))
	// and docker info counts what images -a lists (docker-py's test_images)
	ids := map[string]bool{}
	for _, id := range strings.Fields(d.DockerOK(t, "images", "-aq", "--no-trunc")) {
		ids[id] = true
	}
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "info", "-f", "{{.Images}}")), strconv.Itoa(len(ids))))
}

// TestClassicBuildArgsNotLogged: build args may be secrets; the daemon's
// debug log never shows their values.
func TestClassicBuildArgsNotLogged(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nARG TOKEN\nRUN test -n \"$TOKEN\"\n"})
	const secret = "s3cr3t-build-arg-value"
	r := classic(d, dir, "build", "--build-arg", "TOKEN="+secret, ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	r = classic(d, dir, "build", "--build-arg", "TOKEN="+secret, "--platform", "bogus/x/y/z", ".")
	assert.Check(t, r.ExitCode != 0)
	log := d.Log()
	assert.Check(t, strings.Contains(log, "buildargs=redacted"), "the build was logged")
	assert.Check(t, !strings.Contains(log, secret))
}

// TestClassicBuildStageIDs: one image ID (aux message) per stage, the
// last one the result, with ONBUILD triggers in the stages too.
func TestClassicBuildStageIDs(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Base.Dockerfile": "FROM busybox\nONBUILD RUN echo trig > /trig\nONBUILD LABEL from=onbuild\n"})
	r := classic(d, dir, "build", "-f", "Base.Dockerfile", "-t", "onbase", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM onbase AS one\nRUN cat /trig\nFROM onbase AS two\nCOPY --from=one /trig /copied\nFROM two\nCMD [\"cat\", \"/copied\"]\n"})
	for i := 0; i < 2; i++ {
		out := d.DockerPy(t, `
import docker
c = docker.from_env()
ids = []
for chunk in c.api.build(path=`+"r'"+dir+"'"+`, rm=True, decode=True):
    if 'aux' in chunk:
        ids.append(chunk['aux']['ID'])
img = c.images.get(ids[-1])
print(len(ids), len(set(ids)), img.labels.get('from'), c.containers.run(img.id, remove=True).decode().strip())
`)
		assert.Check(t, is.Equal(out, "3 3 onbuild trig"), "build %d", i+1)
	}
	r = classic(d, dir, "build", "--iidfile", filepath.Join(dir, "iid"), ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	iid, err := os.ReadFile(filepath.Join(dir, "iid"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(iid)[:len("sha256:")+12], "sha256:"+builtID(t, r.Stdout())))
}

// TestClassicBuildCancelled: a client that goes away mid-RUN leaves no
// step container behind, rm or not.
func TestClassicBuildCancelled(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started && sleep 60\n"})
	c := d.Cmd("build", "--rm=false", ".")
	c.Env = append(c.Env, "DOCKER_BUILDKIT=0")
	c.Dir = dir
	res := icmd.StartCmd(c)
	assert.NilError(t, res.Error)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(res.Stdout(), "started") })
	// the step's output can come before its start is over (and ps shows
	// it running only then, as dockerd's)
	waitFor(t, 30*time.Second, func() bool { return len(strings.Fields(d.DockerOK(t, "ps", "-q"))) == 1 })
	assert.NilError(t, res.Cmd.Process.Signal(syscall.SIGINT))
	_ = res.Cmd.Wait()
	waitFor(t, 30*time.Second, func() bool { return d.DockerOK(t, "ps", "-aq") == "" })
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
