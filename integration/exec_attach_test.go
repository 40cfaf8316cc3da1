package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// Exec and attach streams (issues 20 and 12), each as dockerd 20.10 (the
// anchor engine) answers the same requests.

// docker-py against the streams: an exec framed by its start request's
// Tty (not its create's), a detached exec's exit code, and attach with
// logs=1 stream=0, many times: it lost its output about 2 times in 3.
func TestExecAttachDockerPy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerPy(t, `
import time, docker
c = docker.from_env()
api = c.api
ct = c.containers.run("busybox", ["sleep", "300"], detach=True)

def check(what, got, want):
    if got != want:
        raise SystemExit("%s: %r, want %r" % (what, got, want))

for _ in range(2):
    # created with a TTY, started without: framed, all on stdout (the pty)
    ex = api.exec_create(ct.id, ["sh", "-c", "echo out; echo err >&2"], tty=True)
    check("tty exec started without", api.exec_start(ex["Id"], tty=False, demux=True), (b"out\r\nerr\r\n", None))
    # created without, started with one: raw, stdout only (as dockerd)
    ex = api.exec_create(ct.id, ["sh", "-c", "echo out; echo err >&2"], tty=False)
    check("exec started with a tty", api.exec_start(ex["Id"], tty=True), b"out\n")
    check("exec_run tty", ct.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True, tty=True).output, (b"out\r\nerr\r\n", None))
    check("exec_run", ct.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True).output, (b"out\n", b"err\n"))

    # detached: its output goes nowhere, and it can write there
    for cmd, want in ((["sh", "-c", "echo hello; echo oops >&2"], 0), (["sh", "-c", "echo bye; exit 5"], 5)):
        ex = api.exec_create(ct.id, cmd)
        api.exec_start(ex["Id"], detach=True)
        deadline = time.time() + 20
        while api.exec_inspect(ex["Id"])["Running"] or api.exec_inspect(ex["Id"])["ExitCode"] is None:
            if time.time() > deadline:
                raise SystemExit("detached exec did not end")
            time.sleep(0.05)
        check("detached exit code of %r" % cmd, api.exec_inspect(ex["Id"])["ExitCode"], want)

done = c.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"], detach=True)
done.wait()
for i in range(30):
    got = done.attach(stdout=True, stderr=True, logs=True, stream=False)
    check("attach logs=1, try %d" % i, sorted(got.splitlines()), [b"err", b"hello"])
done.remove()
ct.remove(force=True)
print("ok")
`)
	assert.Equal(t, out, "ok")
}

// An exec's console size: the create's, or the start's (a TTY's only).
func TestExecConsoleSize(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "cs", "busybox", "sleep", "300")
	cases := []struct{ create, start, want string }{
		{`{"Cmd":["stty","size"],"Tty":true,"AttachStdout":true,"ConsoleSize":[40,120]}`, `{"Tty":true}`, "40 120"},
		{`{"Cmd":["stty","size"],"Tty":true,"AttachStdout":true,"ConsoleSize":[40,120]}`, `{"Tty":true,"ConsoleSize":[41,121]}`, "41 121"},
		{`{"Cmd":["stty","size"],"Tty":true,"AttachStdout":true}`, `{"Tty":true,"ConsoleSize":[42,122]}`, "42 122"},
	}
	for _, tc := range cases {
		code, body := streamsAPI(t, d, http.MethodPost, "/v1.47/containers/cs/exec", strings.NewReader(tc.create))
		assert.Equal(t, code, http.StatusCreated, body)
		id := strings.Split(strings.Split(body, `"Id":"`)[1], `"`)[0]
		code, body = streamsAPI(t, d, http.MethodPost, "/v1.47/exec/"+id+"/start", strings.NewReader(tc.start))
		assert.Equal(t, code, http.StatusOK, body)
		assert.Check(t, is.Equal(strings.TrimSpace(body), tc.want), "%s then %s", tc.create, tc.start)
	}
	// and through the CLI on a terminal
	p := startPTY(t, d, 33, 101, "exec", "-t", "cs", "stty", "size")
	p.expect(`33 101\r*\n`)
	assert.Equal(t, p.wait(), 0)
}

// An exec whose command cannot start exits 126 whatever the reason, as
// dockerd reports it; a container's own command that is missing is 127.
func TestExecCannotStart(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "nx", "busybox", "sleep", "300")
	for range 2 {
		r := d.Docker("exec", "nx", "no-such-command")
		r.Assert(t, icmd.Expected{ExitCode: 126})
		assert.Check(t, is.Contains(r.Stdout()+r.Stderr(), "OCI runtime exec failed"))
		d.Docker("exec", "nx", "/etc").Assert(t, icmd.Expected{ExitCode: 126})
		d.Docker("exec", "-w", "/nonexistent", "nx", "true").Assert(t, icmd.Expected{ExitCode: 126})
	}
	d.Docker("run", "--rm", "busybox", "no-such-command").Assert(t, icmd.Expected{ExitCode: 127})
}

// compose post_start and pre_stop hooks are detached execs (compose up -d
// and stop): they got a read-only /dev/null for output, so any echo made
// them exit 1 and compose fail.
func TestExecComposeHooks(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.InstallCompose(t)
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	assert.NilError(t, os.MkdirAll(marks, 0o755))
	file := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(file, []byte(`name: hooks
services:
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes:
      - `+marks+`:/marks
    post_start:
      - command: ["sh", "-c", "date >> /marks/started; echo warn >&2; echo started"]
    pre_stop:
      - command: ["sh", "-c", "date >> /marks/stopped; echo stopping"]
`), 0o644))
	f := []string{"-f", file}
	count := func(name string) int {
		b, _ := os.ReadFile(filepath.Join(marks, name))
		return strings.Count(string(b), "\n")
	}
	waitCount := func(name string, n int) {
		t.Helper()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if got := count(name); got < n {
				return poll.Continue("%s hook ran %d times, want %d", name, got, n)
			}
			return poll.Success()
		}, poll.WithTimeout(20*time.Second))
	}
	// up -d and stop run the hooks attached; restart runs them detached
	d.ComposeOK(t, append(f, "up", "-d")...)
	waitCount("started", 1)
	for i := 1; i <= 2; i++ { // and the second time
		r := d.Compose(append(f, "restart")...)
		assert.Assert(t, r.ExitCode == 0, "compose restart %d: %s", i, r.Combined())
		waitCount("stopped", i)
		waitCount("started", i+1)
	}
	d.ComposeOK(t, append(f, "stop")...)
	assert.Equal(t, count("stopped"), 3)
	d.ComposeOK(t, append(f, "down")...)
}

// docker start -a / -ai of an exited container: the attach came before
// the start and was refused (409, "unable to upgrade to tcp"); dockerd
// accepts it and streams once the container starts. The second and
// third time too.
func TestStartAttachExited(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "create", "-i", "--name", "si", "busybox", "sh", "-c", "read x; echo got $x; exit 3")
	for _, v := range []string{"one", "two", "three"} {
		c := d.Cmd("start", "-ai", "si")
		c.Stdin = strings.NewReader(v + "\n")
		c.Timeout = 30 * time.Second
		r := icmd.RunCmd(c)
		r.Assert(t, icmd.Expected{ExitCode: 3})
		assert.Equal(t, r.Stdout(), "got "+v+"\n")
	}
	d.DockerOK(t, "create", "--name", "sa", "busybox", "sh", "-c", "echo run; echo err >&2")
	for range 3 {
		r := icmd.RunCmd(d.Cmd("start", "-a", "sa"))
		r.Assert(t, icmd.Success)
		assert.Equal(t, r.Stdout(), "run\n")
		assert.Equal(t, r.Stderr(), "err\n")
	}
	// with a TTY, under a terminal
	d.DockerOK(t, "create", "-it", "--name", "st", "busybox", "sh")
	for _, word := range []string{"first", "second", "third"} {
		p := startPTY(t, d, 24, 80, "start", "-ai", "st")
		p.expect(`# `)
		p.send("echo " + word[:2] + "''" + word[2:] + "; exit 4\r")
		p.expect(word + `\r*\n`)
		assert.Equal(t, p.wait(), 4)
	}
	// an attach waiting for a start ends when the container is removed
	// (the CLI refuses to attach to a container that is not running: the
	// API, as docker-py or compose use it)
	d.DockerOK(t, "create", "--name", "gone", "busybox", "true")
	req, err := http.NewRequest(http.MethodPost, "http://berth/v1.47/containers/gone/attach?stream=1&stdout=1", nil)
	assert.NilError(t, err)
	resp, err := unixClient(d.Sock).Do(req) // the answer comes once the attach is registered
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		done <- err
	}()
	d.DockerOK(t, "rm", "gone")
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("attach did not end with the removal")
	}
}
