package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/creack/pty"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// End-to-end tests of the interactive endpoints (issue 4) with the real
// docker CLI: stdin, TTYs under a real pty, resize, exec, attach/detach,
// docker cp, top, stats, diff, export, and streams dropped by clients.

// ptyCLI is a docker CLI running on a pseudo-terminal, as under a person.
type ptyCLI struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	mark int // expect looks at output after this offset
	done chan struct{}
}

func startPTY(t *testing.T, d *testenv.Daemon, rows, cols uint16, args ...string) *ptyCLI {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(d.Env(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	assert.NilError(t, err)
	p := &ptyCLI{t: t, cmd: cmd, tty: f, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by pid
			_, _ = cmd.Process.Wait()
		}
		f.Close()
	})
	return p
}

func (p *ptyCLI) send(s string) {
	p.t.Helper()
	_, err := p.tty.Write([]byte(s))
	assert.NilError(p.t, err)
}

// expect waits for re to match the output after the last match and
// returns the submatches.
func (p *ptyCLI) expect(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		rest := p.out.String()[p.mark:]
		if loc := rx.FindStringSubmatchIndex(rest); loc != nil {
			p.mark += loc[1]
			m := rx.FindStringSubmatch(rest)
			p.mu.Unlock()
			return m
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.Fatalf("no %q in the terminal output:\n%q", re, p.out.String()[p.mark:])
	return nil
}

// wait waits for the CLI to exit and returns its exit code.
func (p *ptyCLI) wait() int {
	p.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case <-errc:
	case <-time.After(30 * time.Second):
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("docker CLI did not exit; output:\n%q", p.out.String())
	}
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func TestStreamsStdinPipe(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	c := d.Cmd("run", "--rm", "-i", "busybox", "cat")
	c.Stdin = strings.NewReader("data\n")
	r := icmd.RunCmd(c)
	r.Assert(t, icmd.Expected{ExitCode: 0, Out: "data"})
	assert.Equal(t, r.Stdout(), "data\n")
}

func TestStreamsTTYAndResize(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	p := startPTY(t, d, 24, 80, "run", "--rm", "-t", "busybox", "tty")
	p.expect(`/dev/pts/0\r*\n`)
	assert.Equal(t, p.wait(), 0)

	p = startPTY(t, d, 24, 80, "run", "-it", "--name", "tt", "busybox", "sh")
	p.expect(`# `)
	p.send("stty size\r")
	p.expect(`\n24 80\r*\n`)
	// the terminal changes size: the CLI gets SIGWINCH and resizes the
	// container's terminal
	assert.NilError(t, pty.Setsize(p.tty, &pty.Winsize{Rows: 50, Cols: 132}))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		p.send("stty size\r")
		p.mu.Lock()
		ok := strings.Contains(p.out.String()[p.mark:], "50 132")
		p.mu.Unlock()
		if ok {
			return poll.Success()
		}
		return poll.Continue("no 50 132 yet")
	}, poll.WithDelay(300*time.Millisecond), poll.WithTimeout(15*time.Second))
	p.send("exit 3\r")
	assert.Equal(t, p.wait(), 3)
}

func TestStreamsExec(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "xx", "busybox", "sleep", "1000")

	d.Docker("exec", "xx", "sh", "-c", "exit 7").Assert(t, icmd.Expected{ExitCode: 7})
	out := d.DockerOK(t, "exec", "-u", "33", "-w", "/tmp", "-e", "A=1", "xx", "sh", "-c", "id -u; pwd; echo $A")
	assert.Equal(t, out, "33\n/tmp\n1\n")
	d.Docker("exec", "xx", "nosuchcommand").Assert(t, icmd.Expected{ExitCode: 126}) // as dockerd: every exec that cannot start
	d.Docker("exec", "xx", "/etc/passwd").Assert(t, icmd.Expected{ExitCode: 126})

	p := startPTY(t, d, 24, 80, "exec", "-it", "xx", "sh")
	p.expect(`# `)
	// quoted so that the echo of the typed line does not match
	p.send("echo hel''lo; exit\r")
	p.expect(`hello\r*\n`)
	assert.Equal(t, p.wait(), 0)

	// resize of a container without TTY: accepted and ignored, as dockerd
	code, body := streamsAPI(t, d, http.MethodPost, "/v1.41/containers/xx/resize?h=10&w=20", nil)
	assert.Equal(t, code, http.StatusOK, body)

	d.DockerOK(t, "stop", "-t", "0", "xx")
	code, body = streamsAPI(t, d, http.MethodPost, "/v1.41/containers/xx/exec", strings.NewReader(`{"Cmd":["true"]}`))
	assert.Equal(t, code, http.StatusConflict, body)
	assert.Check(t, is.Contains(body, "is not running"))
	r := d.Docker("exec", "xx", "true")
	r.Assert(t, icmd.Expected{ExitCode: 1})
	assert.Check(t, is.Contains(r.Stderr(), "is not running"))
}

func TestStreamsAttachDetach(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-dit", "--name", "at", "busybox", "sh")

	p := startPTY(t, d, 24, 80, "attach", "at")
	p.send("echo att''ached\r")
	p.expect(`attached\r*\n`)
	p.send("\x10\x11") // ctrl-p ctrl-q
	p.expect("read escape sequence")
	// the CLI ends with 1 after a detach, against dockerd too
	assert.Equal(t, p.wait(), 1)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Running}}", "at")), "true")

	// and once more: the shell is still there and answers
	p = startPTY(t, d, 24, 80, "attach", "at")
	p.send("echo ag''ain\r")
	p.expect(`again\r*\n`)
	p.send("\x10\x11")
	p.expect("read escape sequence")
	assert.Equal(t, p.wait(), 1)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Running}}", "at")), "true")
}

func TestStreamsCopy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	host := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(host, "file"), []byte("f1\n"), 0o644))
	assert.NilError(t, os.MkdirAll(filepath.Join(host, "dir", "sub"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(host, "dir", "sub", "f"), []byte("f2\n"), 0o600))

	d.DockerOK(t, "run", "-d", "--name", "run", "-v", "vol:/data", "busybox", "sleep", "1000")
	// its command prints what the test copies into it before it ever ran
	d.DockerOK(t, "create", "--name", "stopped", "-v", "vol:/data", "busybox", "cat", "/tmp/file", "/tmp/dir/sub/f")
	for _, ctr := range []string{"run", "stopped"} {
		t.Run(ctr, func(t *testing.T) {
			d.DockerOK(t, "cp", filepath.Join(host, "file"), ctr+":/tmp/")
			d.DockerOK(t, "cp", filepath.Join(host, "dir"), ctr+":/tmp/dir")
			// into a volume: the container's mounts are honoured
			d.DockerOK(t, "cp", filepath.Join(host, "file"), ctr+":/data/"+ctr)

			out := filepath.Join(t.TempDir(), "out")
			d.DockerOK(t, "cp", ctr+":/tmp/dir", out)
			b, err := os.ReadFile(filepath.Join(out, "sub", "f"))
			assert.NilError(t, err)
			assert.Equal(t, string(b), "f2\n")
			d.DockerOK(t, "cp", ctr+":/tmp/file", out+"/file")
			b, err = os.ReadFile(filepath.Join(out, "file"))
			assert.NilError(t, err)
			assert.Equal(t, string(b), "f1\n")
			d.DockerOK(t, "cp", ctr+":/data/"+ctr, out+"/fromvol")
			b, err = os.ReadFile(filepath.Join(out, "fromvol"))
			assert.NilError(t, err)
			assert.Equal(t, string(b), "f1\n")

			r := d.Docker("cp", ctr+":/nonexistent", out)
			r.Assert(t, icmd.Expected{ExitCode: 1})
			assert.Check(t, is.Contains(r.Stderr(), "Could not find the file /nonexistent in container "+ctr))
		})
	}
	// the running container sees what was copied into the shared volume
	// through the stopped one
	assert.Equal(t, d.DockerOK(t, "exec", "run", "cat", "/data/stopped", "/tmp/dir/sub/f"), "f1\nf2\n")
	// nothing stays mounted for the stopped container: only the running
	// one's root filesystem
	var merged []string
	for _, m := range testenv.MountsUnder(d.DataRoot) {
		if strings.HasSuffix(m, "/merged") {
			merged = append(merged, m)
		}
	}
	assert.Check(t, is.Len(merged, 1), "%v", merged)
	// and what went into the stopped container is there when it runs
	d.DockerOK(t, "start", "stopped")
	assert.Equal(t, d.DockerOK(t, "wait", "stopped"), "0\n")
	assert.Equal(t, d.DockerOK(t, "logs", "stopped"), "f1\nf2\n")

	// the API's errors
	cases := []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodGet, "/v1.41/containers/run/archive?path=", 400, "path"},
		{http.MethodGet, "/v1.41/containers/run/archive?path=/etc%00x", 400, "NUL"},
		{http.MethodHead, "/v1.41/containers/run/archive?path=/nope", 404, ""},
		{http.MethodGet, "/v1.41/containers/run/archive?path=/nope", 404, "Could not find the file /nope in container run"},
		{http.MethodGet, "/v1.41/containers/nosuch/archive?path=/", 404, "No such container: nosuch"},
		{http.MethodPut, "/v1.41/containers/run/archive?path=/etc/passwd", 400, "extraction point is not a directory"},
	}
	for _, tc := range cases {
		code, body := streamsAPI(t, d, tc.method, tc.path, strings.NewReader(""))
		assert.Check(t, is.Equal(code, tc.status), "%s %s: %s", tc.method, tc.path, body)
		assert.Check(t, is.Contains(body, tc.msg), "%s %s", tc.method, tc.path)
	}
	// HEAD answers the stat header, which escapes stay inside the root
	req, _ := http.NewRequest(http.MethodHead, "http://berth/v1.41/containers/run/archive?path=/../../etc/hostname", nil)
	req.Close = true
	resp, err := unixClient(d.Sock).Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, 200)
	var st struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	assert.NilError(t, json.Unmarshal(mustB64(t, resp.Header.Get("X-Docker-Container-Path-Stat")), &st))
	assert.Equal(t, st.Name, "hostname")
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "run"))
	assert.Equal(t, st.Size, int64(len(id[:12])+1)) // the container's /etc/hostname, not the host's
}

// streamsAPI is apiCall without keep-alive: an idle client connection
// holds a goroutine and an fd in the daemon, which the leak test counts.
func streamsAPI(t *testing.T, d *testenv.Daemon, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, body)
	assert.NilError(t, err)
	req.Close = true
	resp, err := unixClient(d.Sock).Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	assert.NilError(t, err)
	return b
}

// evilTar has entries that try to leave the extraction directory: by
// "..", through symlinks (relative and absolute) and by hard link.
func evilTar(t *testing.T, victim string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	up := strings.Repeat("../", 20)
	add := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		assert.NilError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(data))
		assert.NilError(t, err)
	}
	add(&tar.Header{Name: up + strings.TrimPrefix(victim, "/") + "/pwned1"}, "x")
	add(&tar.Header{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: up + strings.TrimPrefix(victim, "/")}, "")
	add(&tar.Header{Name: "rel/pwned2"}, "x")
	add(&tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: victim}, "")
	add(&tar.Header{Name: "abs/pwned3"}, "x")
	add(&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: up + "etc/passwd"}, "")
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

func TestStreamsCopyMaliciousTar(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	victim := t.TempDir()
	d.DockerOK(t, "run", "-d", "--name", "run", "busybox", "sleep", "1000")
	d.DockerOK(t, "create", "--name", "stopped", "busybox", "true")
	// a symlink in the container that points far up: copying through it
	// stays in the container too
	d.DockerOK(t, "exec", "run", "ln", "-s", strings.Repeat("../", 20)+strings.TrimPrefix(victim, "/"), "/esc")
	d.DockerOK(t, "exec", "run", "mkdir", "-p", victim)
	for _, ctr := range []string{"run", "stopped"} {
		for _, dir := range []string{"/tmp", "/"} {
			code, body := streamsAPI(t, d, http.MethodPut, "/v1.41/containers/"+ctr+"/archive?path="+dir, bytes.NewReader(evilTar(t, victim)))
			// the first entry is refused as a whole: a clean 400
			assert.Check(t, is.Equal(code, http.StatusBadRequest), "%s:%s: %s", ctr, dir, body)
		}
	}
	code, body := streamsAPI(t, d, http.MethodPut, "/v1.41/containers/run/archive?path=/esc", bytes.NewReader(oneFileTar(t, "pwned4")))
	assert.Equal(t, code, http.StatusOK, body)
	// the symlink entries on their own: refused or kept inside
	for _, link := range []string{strings.Repeat("../", 20) + strings.TrimPrefix(victim, "/"), victim} {
		for _, ctr := range []string{"run", "stopped"} {
			code, body := streamsAPI(t, d, http.MethodPut, "/v1.41/containers/"+ctr+"/archive?path=/tmp", bytes.NewReader(symlinkTar(t, link)))
			assert.Check(t, code == http.StatusOK || code == http.StatusBadRequest, "%s -> %s: %d %s", ctr, link, code, body)
		}
	}

	// nothing reached the victim directory ...
	entries, err := os.ReadDir(victim)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))
	// ... nor any place of the daemon's but a container layer
	_ = filepath.Walk(d.Root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), "pwned") {
			assert.Check(t, strings.Contains(p, "/storage/overlay/"), "escaped to %s", p)
		}
		return nil
	})
	for _, p := range []string{"/pwned1", "/pwned2", "/pwned3", "/pwned4", "/pwned5"} {
		_, err := os.Lstat(p)
		assert.Check(t, os.IsNotExist(err), p)
	}
	// and what did land, landed inside the containers
	assert.Check(t, is.Contains(d.DockerOK(t, "exec", "run", "find", "/"+strings.TrimPrefix(victim, "/")), "pwned4"))
}

// symlinkTar has a symlink "lnk" to link, then a file through it.
func symlinkTar(t *testing.T, link string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: link, Mode: 0o777}))
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "lnk/pwned5", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}))
	_, err := tw.Write([]byte("x"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

func oneFileTar(t *testing.T, name string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 2, Mode: 0o644}))
	_, err := tw.Write([]byte("x\n"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

func TestStreamsTopStatsDiffExport(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "idle", "busybox", "sleep", "1000")
	d.DockerOK(t, "run", "-d", "--name", "busy", "busybox", "sh", "-c", "while :; do :; done")

	out := d.DockerOK(t, "top", "idle")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Check(t, is.Len(lines, 2), out)
	assert.Check(t, is.Contains(lines[0], "PID"))
	assert.Check(t, is.Contains(lines[1], "sleep 1000"))
	pid := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Pid}}", "idle"))
	assert.Check(t, is.Contains(lines[1], " "+pid+" "))
	d.DockerOK(t, "exec", "-d", "idle", "sleep", "999")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if out := d.DockerOK(t, "top", "idle", "-o", "pid,args"); strings.Contains(out, "sleep 999") {
			assert.Check(t, strings.HasPrefix(out, "PID"), out)
			return poll.Success()
		}
		return poll.Continue("exec not in top yet")
	}, poll.WithTimeout(30*time.Second))
	code, body := streamsAPI(t, d, http.MethodGet, "/v1.41/containers/idle/top?ps_args="+urlEscape("-o user=PID"), nil)
	assert.Check(t, is.Equal(code, http.StatusBadRequest), body)

	type statsLine struct{ Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string }
	out = d.DockerOK(t, "stats", "--no-stream", "--format", "{{json .}}", "idle", "busy")
	stats := map[string]statsLine{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var s statsLine
		assert.NilError(t, json.Unmarshal([]byte(l), &s), l)
		stats[s.Name] = s
	}
	t.Logf("docker stats --no-stream: %+v", stats)
	for _, name := range []string{"idle", "busy"} {
		s := stats[name]
		used, limit, ok := strings.Cut(s.MemUsage, " / ")
		assert.Check(t, ok, s.MemUsage)
		assert.Check(t, used != "0B" && limit != "0B", s.MemUsage)
		assert.Check(t, strings.Contains(s.NetIO, " / ") && !strings.HasPrefix(s.NetIO, "0B / 0B"), s.NetIO)
	}
	// idle runs sleep 1000 and the exec'd sleep 999
	assert.Check(t, is.Equal(stats["idle"].PIDs, "2"))
	assert.Check(t, is.Equal(stats["busy"].PIDs, "1"))
	assert.Check(t, cpuPercent(t, stats["idle"].CPUPerc) < 5, stats["idle"].CPUPerc)
	// a busy loop gets what the machine has to give: more than the idle
	// container, whatever else runs (a loaded CI machine gives it little)
	assert.Check(t, cpuPercent(t, stats["busy"].CPUPerc) > cpuPercent(t, stats["idle"].CPUPerc), "busy %s, idle %s", stats["busy"].CPUPerc, stats["idle"].CPUPerc)
	// the one-shot API answer: one sample, no precpu (a second sample, a
	// second later, is what a one-shot must not wait for; the empty precpu
	// proves it was not taken, whatever the machine's speed)
	code, body = streamsAPI(t, d, http.MethodGet, "/v1.41/containers/idle/stats?stream=false&one-shot=true", nil)
	assert.Equal(t, code, 200, body)
	var sr struct {
		Name   string `json:"name"`
		Memory struct {
			Usage, Limit uint64
		} `json:"memory_stats"`
		PreCPU struct {
			System uint64 `json:"system_cpu_usage"`
		} `json:"precpu_stats"`
	}
	assert.NilError(t, json.Unmarshal([]byte(body), &sr))
	assert.Check(t, is.Equal(sr.Name, "/idle"))
	assert.Check(t, sr.Memory.Usage > 0 && sr.Memory.Limit > sr.Memory.Usage)
	assert.Check(t, is.Equal(sr.PreCPU.System, uint64(0)))
	code, _ = streamsAPI(t, d, http.MethodGet, "/v1.41/containers/idle/stats?stream=true&one-shot=true", nil)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	// a stream sends a sample a second until the client goes
	resp, err := unixClient(d.Sock).Get("http://berth/v1.41/containers/idle/stats")
	assert.NilError(t, err)
	dec := json.NewDecoder(resp.Body)
	for i := 0; i < 3; i++ {
		var s map[string]any
		assert.NilError(t, dec.Decode(&s))
	}
	resp.Body.Close()

	assert.Equal(t, d.DockerOK(t, "diff", "idle"), "")
	d.DockerOK(t, "exec", "idle", "sh", "-c", "touch /tmp/new; rm /etc/group")
	assert.Equal(t, d.DockerOK(t, "diff", "idle"), "C /etc\nD /etc/group\nC /tmp\nA /tmp/new\n")

	for _, ctr := range []string{"idle", "busy"} {
		r := icmd.RunCmd(icmd.Cmd{Command: []string{"sh", "-c", "docker export " + ctr + " | tar t"}, Env: d.Env(), Timeout: time.Minute})
		r.Assert(t, icmd.Success)
		assert.Check(t, is.Contains(r.Stdout(), "bin/busybox\n"))
		assert.Check(t, is.Contains(r.Stdout(), "etc/passwd\n"))
	}
	d.DockerOK(t, "stop", "-t", "0", "idle")
	r := icmd.RunCmd(icmd.Cmd{Command: []string{"sh", "-c", "docker export idle | tar t"}, Env: d.Env(), Timeout: time.Minute})
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stdout(), "tmp/new\n"))
	assert.Check(t, !strings.Contains(r.Stdout(), "etc/group\n"))
	d.Docker("top", "idle").Assert(t, icmd.Expected{ExitCode: 1, Err: "is not running"})
}

func cpuPercent(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	assert.NilError(t, err, s)
	return f
}

func urlEscape(s string) string {
	return strings.NewReplacer(" ", "%20", "=", "%3D").Replace(s)
}

// hijack opens an attach or exec-start stream on the daemon's socket and
// reads the "101 UPGRADED" answer; the caller drops the connection.
func hijack(t *testing.T, sock, path, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	assert.NilError(t, err)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	assert.NilError(t, err)
	assert.Assert(t, strings.HasPrefix(line, "HTTP/1.1 101"), line)
	for {
		l, err := br.ReadString('\n')
		assert.NilError(t, err)
		if l == "\r\n" {
			break
		}
	}
	return conn
}

type daemonUsage struct{ goroutines, fds, shims, procs int }

func usage(t *testing.T, d *testenv.Daemon, ctrs ...string) daemonUsage {
	t.Helper()
	var info struct{ NGoroutines int }
	code, body := streamsAPI(t, d, http.MethodGet, "/v1.41/info", nil)
	assert.Equal(t, code, 200)
	assert.NilError(t, json.Unmarshal([]byte(body), &info))
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Pid()))
	assert.NilError(t, err)
	u := daemonUsage{goroutines: info.NGoroutines, fds: len(fds)}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "berth-shim") && strings.Contains(string(cmdline), d.ExecRoot) {
			u.shims++
		}
	}
	for _, c := range ctrs {
		out := d.DockerOK(t, "top", c, "-o", "pid")
		u.procs += len(strings.Split(strings.TrimSpace(out), "\n")) - 1
	}
	return u
}

func TestStreamsDroppedClientsLeakNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "-d", "--name", "idle", "busybox", "sleep", "1000")
	d.DockerOK(t, "run", "-di", "--name", "cat", "busybox", "cat")
	d.DockerOK(t, "run", "-dit", "--name", "tty", "busybox", "sh")
	ctrs := []string{"idle", "cat", "tty"}
	const n = 200

	execStream := func(ctr, cmd string, stdin bool) net.Conn {
		body := fmt.Sprintf(`{"Cmd":["sh","-c",%q],"AttachStdin":%v,"AttachStdout":true,"AttachStderr":true}`, cmd, stdin)
		code, resp := streamsAPI(t, d, http.MethodPost, "/v1.41/containers/"+ctr+"/exec", strings.NewReader(body))
		assert.Equal(t, code, http.StatusCreated, resp)
		var created struct{ ID string }
		assert.NilError(t, json.Unmarshal([]byte(resp), &created))
		return hijack(t, d.Sock, "/v1.41/exec/"+created.ID+"/start", `{"Detach":false,"Tty":false}`)
	}
	round := func(count int) {
		for i := 0; i < count; i++ {
			ctr := ctrs[i%len(ctrs)]
			hijack(t, d.Sock, "/v1.41/containers/"+ctr+"/attach?stream=1&stdin=1&stdout=1&stderr=1", "").Close()
			hijack(t, d.Sock, "/v1.41/containers/"+ctr+"/attach?stream=1&stdout=1&stderr=1", "").Close()
			// an exec that reads stdin ends with it; one that does not
			// reads nothing and prints nothing for a while
			execStream(ctr, "cat", true).Close()
			execStream(ctr, "sleep 1", false).Close()
		}
	}
	round(3) // warm up: lazily started daemon goroutines, pools
	// the baseline once the warm-up's execs have ended (sleep 1 outlives
	// its dropped client): each container runs its init alone
	var before daemonUsage
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		before = usage(t, d, ctrs...)
		if before.procs != len(ctrs) || before.shims != len(ctrs) {
			return poll.Continue("the warm-up still runs: %+v", before)
		}
		return poll.Success()
	}, poll.WithDelay(200*time.Millisecond), poll.WithTimeout(30*time.Second))
	t.Logf("before: %+v", before)
	round(n)
	var after daemonUsage
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		after = usage(t, d, ctrs...)
		if after.goroutines <= before.goroutines+5 && after.fds <= before.fds+3 && after.shims == before.shims && after.procs == before.procs {
			return poll.Success()
		}
		return poll.Continue("before %+v, now %+v", before, after)
	}, poll.WithDelay(500*time.Millisecond), poll.WithTimeout(30*time.Second))
	t.Logf("after %d attach + %d exec streams dropped (x2 each): %+v", n, n, after)
	// the containers are unharmed: a dropped attach does not close the
	// stdin of a container that keeps it open
	for _, c := range ctrs {
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Running}}", c)), "true"), c)
	}
	// input kept open: at its end the attach would end (as with dockerd)
	cmd := exec.Command("docker", "attach", "cat")
	cmd.Env = d.Env()
	in, err := cmd.StdinPipe()
	assert.NilError(t, err)
	out, err := cmd.StdoutPipe()
	assert.NilError(t, err)
	assert.NilError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill() // our own docker CLI, by pid
		_ = cmd.Wait()
	}()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		got <- line
	}()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		// the CLI may send before the daemon attached: say it until heard
		_, _ = io.WriteString(in, "still here\n")
		select {
		case line := <-got:
			assert.Equal(t, line, "still here\n")
			return
		case <-deadline:
			t.Fatal("no echo from cat")
		case <-tick.C:
		}
	}
}
