package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// bkCmd is a docker CLI command run in dir as users run it: the buildx
// plugin installed (testenv does it for every daemon) and DOCKER_BUILDKIT
// unset, so `docker build` goes to BuildKit. Progress is plain text.
func bkCmd(d *testenv.Daemon, dir string, args ...string) icmd.Cmd {
	c := d.Cmd(args...)
	env := c.Env[:0:0]
	for _, e := range c.Env {
		if !strings.HasPrefix(e, "DOCKER_BUILDKIT=") {
			env = append(env, e)
		}
	}
	c.Env = append(env, "BUILDKIT_PROGRESS=plain")
	c.Dir = dir
	c.Timeout = 5 * time.Minute
	return c
}

func bkBuild(d *testenv.Daemon, dir string, args ...string) *icmd.Result {
	return icmd.RunCmd(bkCmd(d, dir, args...))
}

// stepLine matches a step's header in plain progress ("#7 [stage-1 2/3]
// RUN ...") and captures its number and text.
var stepLine = regexp.MustCompile(`(?m)^#(\d+) (\[[^\]]+\] .*)$`)

// stepStates says, for every step of a plain-progress build log, whether
// it was CACHED: step text -> cached.
func stepStates(log string) map[string]bool {
	num := map[string]string{} // #n -> text
	out := map[string]bool{}
	for _, m := range stepLine.FindAllStringSubmatch(log, -1) {
		if strings.HasPrefix(m[2], "[internal]") {
			continue
		}
		num[m[1]] = m[2]
		out[m[2]] = false
	}
	for n, text := range num {
		if strings.Contains(log, "\n#"+n+" CACHED\n") {
			out[text] = true
		}
	}
	return out
}

// TestBuildKitBuildAndRun is the first thing a user does: docker build -t
// app . of a Dockerfile FROM an image loaded into berth (no registry), then
// docker run app; the same build again is all cached, and a changed source
// file reruns only the steps after it.
func TestBuildKitBuildAndRun(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hello.txt": "hello from the context\n",
		"Dockerfile": `FROM busybox
RUN echo built > /built
COPY hello.txt /hello.txt
RUN cat /hello.txt > /copied
CMD ["cat", "/built", "/copied"]
`,
	})
	_, err := os.Stat(filepath.Join(d.DataRoot, "buildkit"))
	assert.Check(t, os.IsNotExist(err), "BuildKit starts on the first build, not with the daemon")

	r := bkBuild(d, dir, "build", "-t", "app", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Combined(), "naming to docker.io/library/app:latest"))
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "app"), "built\nhello from the context\n"))
	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "app"))
	assert.Check(t, strings.HasPrefix(id, "sha256:"), id)
	assert.Check(t, is.Contains(d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}"), "app:latest"))
	for step, cached := range stepStates(r.Combined()) {
		assert.Check(t, !cached || strings.Contains(step, "FROM"), "first build ran %q", step)
	}
	ls := icmd.RunCmd(bkCmd(d, dir, "buildx", "ls"))
	assert.Check(t, is.Regexp(`running\s+v0\.[1-9]\d*\.\d+\s`, ls.Combined()), "BuildKit's version shows: %s", ls.Combined())

	// nothing changed: every step cached, the same image
	r = bkBuild(d, dir, "build", "-t", "app", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	states := stepStates(r.Combined())
	assert.Check(t, len(states) >= 3, r.Combined())
	for step, cached := range states {
		assert.Check(t, cached || strings.Contains(step, "FROM"), "second build reran %q", step)
	}
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "app")), id))

	// one source file changed: the RUN before the COPY stays cached, the
	// COPY and what follows run again
	writeFiles(t, dir, map[string]string{"hello.txt": "changed\n"})
	r = bkBuild(d, dir, "build", "-t", "app", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	states = stepStates(r.Combined())
	assert.Check(t, states["[2/4] RUN echo built > /built"], r.Combined())
	assert.Check(t, !states["[3/4] COPY hello.txt /hello.txt"], r.Combined())
	assert.Check(t, !states["[4/4] RUN cat /hello.txt > /copied"], r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "app"), "built\nchanged\n"))
	assert.Check(t, strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "app")) != id)
}

// TestBuildKitMultiStage builds what the issue asks for: stages, COPY
// --from, ARG, a cache mount, a secret mount, --target, and docker run.
func TestBuildKitMultiStage(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"src/main.txt": "source v1\n",
		"token.txt":    "s3cr3t-token\n",
		"Dockerfile": `ARG GREETING=hello
FROM busybox AS deps
ARG BUMP=0
RUN --mount=type=cache,target=/cache echo "run $BUMP" >> /cache/runs && wc -l < /cache/runs > /deps-runs

FROM busybox AS build
ARG GREETING
COPY src/ /src/
RUN --mount=type=secret,id=token grep -q '^s3cr3t-tok' /run/secrets/token && echo "$GREETING" > /greeting && cat /src/main.txt >> /greeting
RUN test ! -e /run/secrets/token

FROM busybox
COPY --from=deps /deps-runs /deps-runs
COPY --from=build /greeting /greeting
CMD ["cat", "/greeting"]
`,
	})
	build := func(args ...string) *icmd.Result {
		return bkBuild(d, dir, append([]string{"build", "--secret", "id=token,src=token.txt"}, args...)...)
	}
	r := build("--build-arg", "GREETING=hey", "-t", "multi", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, !strings.Contains(r.Combined(), "s3cr3t-token"), "a secret never shows in the output")
	assert.Check(t, is.Contains(d.DockerOK(t, "run", "--rm", "multi", "cat", "/deps-runs"), "1"))
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "multi"), "hey\nsource v1\n"))
	hist := d.DockerOK(t, "history", "--no-trunc", "multi")
	assert.Check(t, !strings.Contains(hist, "s3cr3t"), hist)

	// --target stops at a stage
	r = build("--target", "build", "-t", "multi:build", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "multi:build", "cat", "/greeting"), "hello\nsource v1\n"))

	// a changed source reruns the build stage only; the cache mount
	// outlives builds (a rerun step sees what the last one left)
	writeFiles(t, dir, map[string]string{"src/main.txt": "source v2\n"})
	r = build("--build-arg", "GREETING=hey", "-t", "multi", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	states := stepStates(r.Combined())
	for step, cached := range states {
		if strings.HasPrefix(step, "[deps ") && !strings.Contains(step, "FROM") {
			assert.Check(t, cached, "deps stage reran: %s", step)
		}
	}
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "multi"), "hey\nsource v2\n"))
	r = build("--build-arg", "BUMP=1", "-t", "multi", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "multi", "cat", "/deps-runs"), "2\n"))

	// a secret the build needs and is not given
	r = bkBuild(d, dir, "build", "--no-cache", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "/run/secrets/token"), r.Combined())
}

// TestBuildKitCompose: docker compose up --build of a project with two
// built services, and compose build reporting BuildKit's progress.
func TestBuildKitCompose(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.InstallCompose(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"web/Dockerfile":    "FROM busybox\nRUN echo web > /who\nCMD [\"sh\", \"-c\", \"cat /who; exec sleep 600\"]\n",
		"worker/Dockerfile": "FROM busybox\nARG ROLE\nRUN echo \"$ROLE\" > /who\nCMD [\"sh\", \"-c\", \"cat /who; exec sleep 600\"]\n",
		"compose.yaml": `services:
  web:
    build: ./web
  worker:
    build:
      context: ./worker
      args:
        ROLE: worker
`,
	})
	c := bkCmd(d, dir, "compose", "-p", "bkproj", "up", "--build", "-d")
	r := icmd.RunCmd(c)
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	t.Cleanup(func() { icmd.RunCmd(bkCmd(d, dir, "compose", "-p", "bkproj", "down", "-t", "0")) })
	for svc, want := range map[string]string{"web": "web\n", "worker": "worker\n"} {
		out := d.DockerOK(t, "exec", "bkproj-"+svc+"-1", "cat", "/who")
		assert.Check(t, is.Equal(out, want))
	}
	r = icmd.RunCmd(bkCmd(d, dir, "compose", "-p", "bkproj", "build"))
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Contains(r.Combined(), "CACHED"), "BuildKit's progress: %s", r.Combined())
}

// TestBuildKitOutputs: --load, --output type=docker,dest= and
// type=local,dest= with docker buildx build.
func TestBuildKitOutputs(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo out > /out.txt\n",
	})
	r := bkBuild(d, dir, "buildx", "build", "--load", "-t", "loaded:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "loaded:1", "cat", "/out.txt"), "out\n"))

	out := t.TempDir()
	tarPath := filepath.Join(out, "img.tar")
	r = bkBuild(d, dir, "buildx", "build", "--output", "type=docker,dest="+tarPath, "-t", "fromtar:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	d.DockerOK(t, "rmi", "loaded:1")
	assert.Check(t, is.Contains(d.DockerOK(t, "load", "-i", tarPath), "fromtar:1"))
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "fromtar:1", "cat", "/out.txt"), "out\n"))

	local := filepath.Join(out, "rootfs")
	r = bkBuild(d, dir, "buildx", "build", "--output", "type=local,dest="+local, ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	b, err := os.ReadFile(filepath.Join(local, "out.txt"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "out\n"))
	_, err = os.Stat(filepath.Join(local, "bin", "busybox"))
	assert.Check(t, err)
}

// buildCacheLine is the Build Cache row of docker system df.
func buildCacheLine(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	for _, l := range strings.Split(d.DockerOK(t, "system", "df"), "\n") {
		if strings.HasPrefix(l, "Build Cache") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	t.Fatal("no Build Cache row in docker system df")
	return ""
}

// idleBuildCacheLine is the Build Cache row once no record is active: a
// build's references are released when its job ends, which can be a moment
// after the client has its answer (dockerd's BuildKit does the same).
func idleBuildCacheLine(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	var line string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		line = buildCacheLine(t, d)
		if f := strings.Fields(line); len(f) == 6 && f[3] == "0" {
			return poll.Success()
		}
		return poll.Continue("build cache still active: %s", line)
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(100*time.Millisecond))
	return line
}

// TestBuildKitCachePrune: the build cache is in the daemon's accounting
// (system df, builder du, buildx history) and builder prune / system
// prune reclaim it.
func TestBuildKitCachePrune(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"big.bin":    strings.Repeat("x", 1<<20),
		"Dockerfile": "FROM busybox\nCOPY big.bin /big.bin\nRUN cp /big.bin /big2.bin\n",
	})
	r := bkBuild(d, dir, "build", "-t", "cachy", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	line := idleBuildCacheLine(t, d)
	assert.Check(t, line != "Build Cache 0 0 0B 0B", line)
	assert.Check(t, is.Contains(icmd.RunCmd(bkCmd(d, dir, "builder", "du")).Combined(), "Total:"))
	hist := icmd.RunCmd(bkCmd(d, dir, "buildx", "history", "ls"))
	assert.Equal(t, hist.ExitCode, 0, hist.Combined())
	assert.Check(t, is.Contains(hist.Combined(), "Completed"))

	// a filter that matches nothing removes nothing
	r = icmd.RunCmd(bkCmd(d, dir, "builder", "prune", "-af", "--filter", "until=240h"))
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(buildCacheLine(t, d), line))

	r = icmd.RunCmd(bkCmd(d, dir, "builder", "prune", "-af"))
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))
	// the image stays: it is berth's, not the cache's
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "cachy", "wc", "-c", "/big2.bin"), "1048576 /big2.bin\n"))

	// POST /build/prune through docker-py's client reports what went
	r = bkBuild(d, dir, "build", "--no-cache", "-t", "cachy", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	idleBuildCacheLine(t, d) // a prune leaves what a build still holds
	py := d.DockerPy(t, `
import docker
api = docker.from_env().api
rep = api._result(api._post(api._url("/build/prune"), params={"all": "1"}), True)
print(len(rep["CachesDeleted"]) > 0, rep["SpaceReclaimed"] > 1000000)
`)
	assert.Check(t, is.Equal(py, "True True"))
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))

	// system prune goes through POST /build/prune
	r = bkBuild(d, dir, "build", "--no-cache", "-t", "cachy", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, idleBuildCacheLine(t, d) != "Build Cache 0 0 0B 0B")
	out := d.DockerOK(t, "system", "prune", "-af")
	assert.Check(t, is.Contains(out, "Deleted build cache objects"), out)
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))

	// and a rebuild after that works from nothing (system prune -a took
	// the base image too)
	d.LoadBusybox(t)
	r = bkBuild(d, dir, "build", "-t", "cachy", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, !stepStates(r.Combined())["[3/3] RUN cp /big.bin /big2.bin"], r.Combined())
}

// bkLeftovers lists what BuildKit steps left on the host: mounts under the
// daemon's roots made by BuildKit, build network namespaces, step cgroups
// under the daemon's cgroup parent.
func bkLeftovers(d *testenv.Daemon, cgroupParent string) []string {
	var out []string
	for _, m := range append(testenv.MountsUnder(d.DataRoot), testenv.MountsUnder(d.ExecRoot)...) {
		if strings.Contains(m, "buildkit") {
			out = append(out, "mount "+m)
		}
	}
	ns, _ := filepath.Glob(filepath.Join(d.ExecRoot, "netns", "buildkit-*"))
	out = append(out, ns...)
	cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent, "buildkit", "*"))
	for _, c := range cg {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			procs, _ := os.ReadFile(filepath.Join(c, "cgroup.procs"))
			out = append(out, "cgroup "+c+" procs "+strings.Join(strings.Fields(string(procs)), ","))
		}
	}
	return out
}

func removeCgroupParent(parent string) {
	for _, sub := range []string{"buildkit", ""} {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent, sub))
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	}
}

// TestBuildKitBadInput: a syntax error, a failing RUN, a symlink out of
// the context, an unknown # syntax= frontend: clear errors, and nothing
// left behind (no step containers, mounts, namespaces; the cache as
// before once pruned).
func TestBuildKitBadInput(t *testing.T) {
	t.Parallel()
	parent := "berth-e2e-bk-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { removeCgroupParent(parent) })
	d := testenv.StartDaemon(t, "--cgroup-parent", parent)
	d.LoadBusybox(t)
	dir := t.TempDir()

	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN true\nRUNN echo x\n"})
	r := bkBuild(d, dir, "build", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "dockerfile parse error on line 3: unknown instruction: RUNN"), r.Combined())

	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo to-stdout; echo to-stderr >&2; exit 7\n"})
	r = bkBuild(d, dir, "build", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "did not complete successfully: exit code: 7"), r.Combined())
	assert.Check(t, is.Contains(r.Combined(), "to-stdout"))
	assert.Check(t, is.Contains(r.Combined(), "to-stderr"))
	assert.Check(t, is.Len(bkLeftovers(d, parent), 0), "%v", bkLeftovers(d, parent))

	// a symlink to a file outside the context is never followed out of it
	secret := filepath.Join(t.TempDir(), "outside.txt")
	assert.NilError(t, os.WriteFile(secret, []byte("outside the context\n"), 0o644))
	assert.NilError(t, os.Symlink(secret, filepath.Join(dir, "link")))
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY link /link\n"})
	r = bkBuild(d, dir, "build", "-t", "linked", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), `"/link": not found`), r.Combined())
	assert.Check(t, !strings.Contains(r.Combined(), "outside the context"))
	// a directory copied whole keeps the link as a link
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "tree"), 0o755))
	assert.NilError(t, os.Rename(filepath.Join(dir, "link"), filepath.Join(dir, "tree", "link")))
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY tree /tree\nRUN ! cat /tree/link\n"})
	r = bkBuild(d, dir, "build", "-t", "linked", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "linked", "readlink", "/tree/link"), secret+"\n"))

	writeFiles(t, dir, map[string]string{"Dockerfile": "# syntax=example.invalid/no/such-frontend:1\nFROM busybox\n"})
	r = bkBuild(d, dir, "build", ".")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "example.invalid/no/such-frontend"), r.Combined())

	// after the failures, a prune leaves the cache as empty as it began
	idleBuildCacheLine(t, d)
	r = icmd.RunCmd(bkCmd(d, dir, "builder", "prune", "-af"))
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))
	assert.Check(t, is.Len(bkLeftovers(d, parent), 0), "%v", bkLeftovers(d, parent))
}

// TestBuildKitCancel: Ctrl-C in the client stops the build, its step
// processes end and what they held is released.
func TestBuildKitCancel(t *testing.T) {
	t.Parallel()
	parent := "berth-e2e-bk-cancel"
	t.Cleanup(func() { removeCgroupParent(parent) })
	d := testenv.StartDaemon(t, "--cgroup-parent", parent)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo step-started; exec sleep 600\n"})
	for round := 1; round <= 2; round++ {
		c := bkCmd(d, dir, "build", "--no-cache", ".")
		res := icmd.StartCmd(c)
		assert.NilError(t, res.Error)
		waitFor(t, 2*time.Minute, func() bool { return strings.Contains(res.Combined(), "step-started") })
		assert.Check(t, len(bkLeftovers(d, parent)) > 0, "the step runs in its own cgroup and namespace")
		assert.NilError(t, res.Cmd.Process.Signal(os.Interrupt))
		r := icmd.WaitOnCmd(time.Minute, res)
		assert.Check(t, r.ExitCode != 0, "round %d", round)
		var left []string
		deadline := time.Now().Add(time.Minute)
		for left = bkLeftovers(d, parent); len(left) > 0 && time.Now().Before(deadline); left = bkLeftovers(d, parent) {
			time.Sleep(100 * time.Millisecond)
		}
		assert.Check(t, is.Len(left, 0), "round %d: %v", round, left)
	}
	// nothing of the cancelled builds stays in use (leased or mounted): a
	// prune takes all of it (once their jobs have ended: idle fails if never)
	idleBuildCacheLine(t, d)
	r := icmd.RunCmd(bkCmd(d, dir, "builder", "prune", "-af"))
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(buildCacheLine(t, d), "Build Cache 0 0 0B 0B"))
	// the daemon builds on afterwards
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo ok\n"})
	r = bkBuild(d, dir, "build", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
}

// TestBuildKitNetwork: RUN steps get their own address on berth's default
// bridge with berth's DNS server, --network none has no interface,
// --add-host adds a name.
func TestBuildKitNetwork(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": `FROM busybox
RUN ip -4 -o addr show eth0 | awk '{print $4}' > /addr && grep nameserver /etc/resolv.conf > /dns && grep myhost /etc/hosts > /hosts
RUN --network=none sh -c '! ip link show eth0' && echo none-ok > /none
`})
	r := bkBuild(d, dir, "build", "--add-host", "myhost:192.0.2.7", "-t", "netcheck", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	gw := strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge"))
	subnet := strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"))
	addr := strings.TrimSpace(d.DockerOK(t, "run", "--rm", "netcheck", "cat", "/addr"))
	prefix := subnet[:strings.LastIndex(subnet, ".")+1]
	assert.Check(t, strings.HasPrefix(addr, prefix), "step address %s on the default bridge %s", addr, subnet)
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "netcheck", "cat", "/dns"), "nameserver "+gw+"\n"))
	assert.Check(t, is.Contains(d.DockerOK(t, "run", "--rm", "netcheck", "cat", "/hosts"), "192.0.2.7"))
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "netcheck", "cat", "/none"), "none-ok\n"))
	ns, _ := filepath.Glob(filepath.Join(d.ExecRoot, "netns", "buildkit-*"))
	assert.Check(t, is.Len(ns, 0), "step namespaces are removed")
}

// TestBuildKitRegistryBase: FROM an image that is only in a registry (with
// auth, on an insecure address) pulls it with the user's credentials; a
// restarted daemon keeps the build cache.
func TestBuildKitRegistryBase(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, true)
	archive, _ := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "base/busybox:1")
	d := testenv.StartDaemon(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + reg.Addr + "/base/busybox:1\nRUN echo from-registry > /r\n"})

	r := bkBuild(d, dir, "build", "-t", "fromreg", ".")
	assert.Check(t, r.ExitCode != 0, "no credentials: %s", r.Combined())
	d.DockerOK(t, "login", "-u", reg.User, "-p", reg.Password, reg.Addr)
	r = bkBuild(d, dir, "build", "-t", "fromreg", "-t", reg.Addr+"/built/app:1", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "fromreg", "cat", "/r"), "from-registry\n"))

	// the built image is berth's like any other: it pushes, and pulls back
	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "fromreg"))
	d.DockerOK(t, "push", reg.Addr+"/built/app:1")
	d.DockerOK(t, "rmi", reg.Addr+"/built/app:1")
	d.DockerOK(t, "pull", reg.Addr+"/built/app:1")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", reg.Addr+"/built/app:1")), id))

	d.Restart(t, 15)
	r = bkBuild(d, dir, "build", "-t", "fromreg", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, stepStates(r.Combined())["[2/2] RUN echo from-registry > /r"], "cached across a restart: %s", r.Combined())
}

// TestBuildKitDaemonCrashMidStep: berthd killed while a RUN step runs;
// berth-buildkitd, its lifeline cut, ends the build and exits, and the
// next berthd has nothing left of the step and builds again.
func TestBuildKitDaemonCrashMidStep(t *testing.T) {
	t.Parallel()
	parent := "berth-e2e-bk-crash"
	t.Cleanup(func() { removeCgroupParent(parent) })
	d := testenv.StartDaemon(t, "--cgroup-parent", parent)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo step-started; exec sleep 600\n"})
	res := icmd.StartCmd(bkCmd(d, dir, "build", "--no-cache", "."))
	assert.NilError(t, res.Error)
	waitFor(t, 2*time.Minute, func() bool { return strings.Contains(res.Combined(), "step-started") })
	assert.Assert(t, is.Len(d.BuildKitPids(), 1))
	d.Kill(t)
	icmd.WaitOnCmd(time.Minute, res)
	waitFor(t, time.Minute, func() bool { return len(d.BuildKitPids()) == 0 })

	d.Start(t)
	waitFor(t, time.Minute, func() bool { return len(bkLeftovers(d, parent)) == 0 })
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo again\n"})
	r := bkBuild(d, dir, "build", "-t", "again", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
}

// TestBuildKitHelperCrashMidStep: berth-buildkitd killed while a RUN step
// runs leaves the step's process, runc state and mounts; berthd serves on,
// gives back the step's network at once, and the next build (a new helper)
// removes the rest and builds. The third time, berthd's own restart does.
func TestBuildKitHelperCrashMidStep(t *testing.T) {
	t.Parallel()
	parent := "berth-e2e-bk-helper"
	t.Cleanup(func() { removeCgroupParent(parent) })
	d := testenv.StartDaemon(t, "--cgroup-parent", parent)
	d.LoadBusybox(t)
	dir := t.TempDir()
	for round := 1; round <= 3; round++ {
		writeFiles(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nRUN echo step-started %d; exec sleep 600\n", round)})
		res := icmd.StartCmd(bkCmd(d, dir, "build", "--no-cache", "."))
		assert.NilError(t, res.Error)
		waitFor(t, 2*time.Minute, func() bool { return strings.Contains(res.Combined(), fmt.Sprintf("step-started %d", round)) })
		pids := d.BuildKitPids()
		assert.Assert(t, is.Len(pids, 1))
		assert.NilError(t, syscall.Kill(pids[0], syscall.SIGKILL))
		icmd.WaitOnCmd(time.Minute, res)
		assert.Check(t, res.ExitCode != 0, "the build fails with its helper")

		left := bkLeftovers(d, parent)
		assert.Check(t, len(left) > 0, "a killed helper leaves its running step")
		waitFor(t, time.Minute, func() bool {
			ns, _ := filepath.Glob(filepath.Join(d.ExecRoot, "netns", "buildkit-*"))
			return len(ns) == 0
		})
		d.DockerOK(t, "ps") // berthd serves on

		if round == 3 {
			d.Restart(t, syscall.SIGTERM)
			waitFor(t, time.Minute, func() bool { return len(bkLeftovers(d, parent)) == 0 })
		}
		writeFiles(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nRUN echo again %d\n", round)})
		r := bkBuild(d, dir, "build", "-t", "again", ".")
		assert.Equal(t, r.ExitCode, 0, r.Combined())
		assert.Check(t, is.Len(bkLeftovers(d, parent), 0))
	}
}

// TestBuildKitConcurrentBuilds: builds from the same local base at once
// (the base copied into BuildKit once, each image tagged as asked).
func TestBuildKitConcurrentBuilds(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	const n = 3
	results := make(chan *icmd.Result, n)
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nARG I\nRUN echo \"build $I\" > /who\n"})
		go func(i int, dir string) {
			results <- bkBuild(d, dir, "build", "--build-arg", "I="+string(rune('0'+i)), "-t", "par:"+string(rune('0'+i)), ".")
		}(i, dir)
	}
	for i := 0; i < n; i++ {
		r := <-results
		assert.Check(t, r.ExitCode == 0, r.Combined())
	}
	for i := 0; i < n; i++ {
		tag := string(rune('0' + i))
		assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "par:"+tag, "cat", "/who"), "build "+tag+"\n"))
	}
}

// TestBuildKitFromLocalImages: FROM images that only berth has, made every
// way berth makes images (classic build, commit, import, a BuildKit build):
// their layers reach BuildKit byte for byte, so their IDs hold.
func TestBuildKitFromLocalImages(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile.classic": "FROM busybox\nRUN echo classic > /c\n"})
	r := classic(d, dir, "build", "-f", "Dockerfile.classic", "-t", "classicbase", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	d.DockerOK(t, "run", "--name", "tocommit", "busybox", "sh", "-c", "echo committed > /m")
	d.DockerOK(t, "commit", "tocommit", "committed:1")
	exported := filepath.Join(t.TempDir(), "rootfs.tar")
	d.DockerOK(t, "export", "-o", exported, "tocommit")
	d.DockerOK(t, "import", exported, "imported:1")

	for base, want := range map[string]string{"classicbase": "classic", "committed:1": "committed", "imported:1": "committed"} {
		file := map[string]string{"classicbase": "/c", "committed:1": "/m", "imported:1": "/m"}[base]
		writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat " + file + " > /seen\n"})
		tag := "on-" + strings.NewReplacer(":", "-").Replace(base)
		r := bkBuild(d, dir, "build", "-t", tag, ".")
		assert.Check(t, r.ExitCode == 0, "FROM %s: %s", base, r.Combined())
		assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", tag, "cat", "/seen"), want+"\n"), base)
	}
	// and FROM what BuildKit itself built
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM on-classicbase\nRUN cat /seen /c > /twice\n"})
	r = bkBuild(d, dir, "build", "-t", "second-gen", ".")
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	assert.Check(t, is.Equal(d.DockerOK(t, "run", "--rm", "second-gen", "cat", "/twice"), "classic\nclassic\n"))
}
