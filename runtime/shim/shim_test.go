package shim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/berthd/berth/runtime/logfile"
	"github.com/berthd/berth/runtime/monitor"
	"github.com/berthd/berth/runtime/shim/proto"
)

func testCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	pollUntilOr(t, what, cond, func() string { return "" })
}

// pollUntilOr is pollUntil, saying state() when it times out.
func pollUntilOr(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if st := state(); st != "" {
				t.Fatalf("timed out waiting until %s; %s", what, st)
			}
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run launches, starts and waits for cfg; it releases the shim and checks
// that nothing is left.
func run(t *testing.T, cfg Config) monitor.ExitStatus {
	t.Helper()
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.Assert(t, c.Pid() > 0)
	assert.NilError(t, c.Start(ctx))
	st, err := c.Wait(ctx)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(cfg.StateDir, "shim.log"))
		t.Logf("wait failed; shim.log: %s", b)
	}
	assert.NilError(t, err)
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
	return st
}

func readLog(t *testing.T, path string) (stdout, stderr string) {
	t.Helper()
	var o, e strings.Builder
	err := logfile.ReadLogs(context.Background(), path, logfile.Options{Stdout: true, Stderr: true, Tail: -1}, func(m logfile.Message) error {
		if m.Stream == "stdout" {
			o.Write(m.Line)
		} else {
			e.Write(m.Line)
		}
		return nil
	})
	assert.NilError(t, err)
	return o.String(), e.String()
}

func TestEchoHi(t *testing.T) {
	cfg := bundle(t, false, "echo", "hi")
	st := run(t, cfg)
	assert.Equal(t, st.Code, 0)
	assert.Assert(t, !st.OOMKilled)
	assert.Assert(t, time.Since(st.ExitedAt) < time.Minute)
	b, err := os.ReadFile(cfg.LogPath)
	assert.NilError(t, err)
	assert.Assert(t, is.Regexp(`^\{"log":"hi\\n","stream":"stdout","time":"[0-9T:.-]+Z"\}\n$`, string(b)))
	got, ok, err := ReadExit(cfg.StateDir)
	assert.NilError(t, err)
	assert.Assert(t, ok)
	assert.Equal(t, got.Code, 0)
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "echo out; echo err >&2; exit 0"}, 0},
		{[]string{"sh", "-c", "exit 255"}, 255},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cfg := bundle(t, false, tc.args...)
			assert.Equal(t, run(t, cfg).Code, tc.code)
		})
	}
	t.Run("stdout and stderr", func(t *testing.T) {
		cfg := bundle(t, false, "sh", "-c", "echo out; echo err >&2")
		run(t, cfg)
		o, e := readLog(t, cfg.LogPath)
		assert.Equal(t, o, "out\n")
		assert.Equal(t, e, "err\n")
	})
}

func TestLaunchErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"missing binary", []string{"nosuchcmd"}, `exec: "nosuchcmd": executable file not found in $PATH`, 127},
		{"not executable", []string{"/bin/noexec"}, "permission denied", 126},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bundle(t, false, tc.args...)
			ctx, cancel := testCtx()
			defer cancel()
			_, err := Launch(ctx, cfg)
			assert.ErrorContains(t, err, tc.want)
			var pe *ProcessError
			assert.Assert(t, errors.As(err, &pe))
			assert.Equal(t, pe.ExitCode, tc.code)
			assert.Assert(t, errdefs.IsInvalidArgument(err))
			assertGone(t, cfg, 0)
			_, ok, _ := ReadExit(cfg.StateDir)
			assert.Assert(t, !ok)
		})
	}
	t.Run("bad config", func(t *testing.T) {
		_, err := Launch(context.Background(), Config{Config: proto.Config{ID: "x"}})
		assert.Assert(t, errdefs.IsInvalidArgument(err))
	})
	t.Run("bad bundle", func(t *testing.T) {
		cfg := bundle(t, false, "true")
		cfg.Bundle = filepath.Join(env.base, "nobundle")
		_, err := Launch(context.Background(), cfg)
		assert.ErrorContains(t, err, "")
		assertGone(t, cfg, 0)
	})
}

func TestStdinPipe(t *testing.T) {
	cfg := bundle(t, false, "cat")
	cfg.OpenStdin, cfg.StdinOnce = true, true
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	var out, errb bytes.Buffer
	attached := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Attach(ctx, AttachOptions{Streams: monitor.Streams{Stdin: strings.NewReader("data\n"), Stdout: &out, Stderr: &errb}, OnAttached: func() { close(attached) }})
	}()
	<-attached
	assert.NilError(t, c.Start(ctx))
	assert.NilError(t, <-done) // output ends when cat exits after stdin EOF
	assert.Equal(t, out.String(), "data\n")
	st, err := c.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Code, 0)
	o, _ := readLog(t, cfg.LogPath)
	assert.Equal(t, o, "data\n")
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
}

func TestTTY(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		cfg := bundle(t, true, "tty")
		assert.Equal(t, run(t, cfg).Code, 0)
		o, _ := readLog(t, cfg.LogPath)
		assert.Equal(t, o, "/dev/pts/0\r\n")
	})
	t.Run("console size", func(t *testing.T) {
		cfg := bundle(t, true, "stty", "size")
		cfg.ConsoleHeight, cfg.ConsoleWidth = 33, 111
		run(t, cfg)
		o, _ := readLog(t, cfg.LogPath)
		assert.Equal(t, o, "33 111\r\n")
	})
	t.Run("resize", func(t *testing.T) {
		cfg := bundle(t, true, "sh", "-c", "stty -echo; echo READY; read x; stty size")
		cfg.OpenStdin = true
		ctx, cancel := testCtx()
		defer cancel()
		c, err := Launch(ctx, cfg)
		assert.NilError(t, err)
		pr, pw := io.Pipe()
		var out syncBuffer
		attached := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- c.Attach(ctx, AttachOptions{Streams: monitor.Streams{Stdin: pr, Stdout: &out}, OnAttached: func() { close(attached) }})
		}()
		<-attached
		assert.NilError(t, c.Start(ctx))
		assert.NilError(t, c.Resize(ctx, 40, 132))
		// type once stty -echo has run, whatever the machine's speed
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if strings.Contains(out.String(), "READY") {
				return poll.Success()
			}
			return poll.Continue("the shell is not reading yet")
		}, poll.WithTimeout(time.Minute), poll.WithDelay(5*time.Millisecond))
		_, err = pw.Write([]byte("go\r"))
		assert.NilError(t, err)
		assert.NilError(t, <-done)
		pw.Close()
		assert.Assert(t, is.Contains(out.String(), "40 132\r\n"))
		st, err := c.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, st.Code, 0)
		assert.NilError(t, c.Release(ctx))
		assertGone(t, cfg, c.ShimPid())
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningContainer launches and starts `sleep 600`.
func runningContainer(t *testing.T) (*Client, Config) {
	t.Helper()
	cfg := bundle(t, false, "sleep", "600")
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	return c, cfg
}

func stopContainer(t *testing.T, c *Client, cfg Config) monitor.ExitStatus {
	t.Helper()
	ctx, cancel := testCtx()
	defer cancel()
	assert.NilError(t, c.Kill(ctx, 9))
	st, err := c.Wait(ctx)
	assert.NilError(t, err)
	assert.NilError(t, c.Release(ctx))
	assertGone(t, cfg, c.ShimPid())
	return st
}

func TestExec(t *testing.T) {
	c, cfg := runningContainer(t)
	ctx, cancel := testCtx()
	defer cancel()

	t.Run("exit code and streams", func(t *testing.T) {
		var out, errb syncBuffer
		e, err := c.Exec(ctx, monitor.ExecConfig{ID: "e1", ProcessJSON: processJSON(t, false, "sh", "-c", "echo out; echo err >&2; exit 7"), Streams: monitor.Streams{Stdout: &out, Stderr: &errb}})
		assert.NilError(t, err)
		assert.Assert(t, e.Pid() > 0)
		code, err := e.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, code, 7)
		assert.Equal(t, out.String(), "out\n")
		assert.Equal(t, errb.String(), "err\n")
	})
	t.Run("missing binary", func(t *testing.T) {
		_, err := c.Exec(ctx, monitor.ExecConfig{ID: "e2", ProcessJSON: processJSON(t, false, "nosuchcmd"), Streams: monitor.Streams{Stdout: io.Discard}})
		var pe *ProcessError
		assert.Assert(t, errors.As(err, &pe), "%v", err)
		assert.Equal(t, pe.ExitCode, 127)
		assert.ErrorContains(t, err, `exec: "nosuchcmd": executable file not found in $PATH`)
	})
	t.Run("not executable", func(t *testing.T) {
		_, err := c.Exec(ctx, monitor.ExecConfig{ID: "e3", ProcessJSON: processJSON(t, false, "/bin/noexec")})
		var pe *ProcessError
		assert.Assert(t, errors.As(err, &pe), "%v", err)
		assert.Equal(t, pe.ExitCode, 126)
	})
	t.Run("stdin and parent", func(t *testing.T) {
		pr, pw := io.Pipe()
		var out syncBuffer
		e, err := c.Exec(ctx, monitor.ExecConfig{ID: "e4", ProcessJSON: processJSON(t, false, "cat"), Streams: monitor.Streams{Stdin: pr, Stdout: &out}})
		assert.NilError(t, err)
		// The exec is the shim's child, not ours.
		assert.Equal(t, parentPid(t, e.Pid()), c.ShimPid())
		pw.Write([]byte("abc\n"))
		pw.Close()
		code, err := e.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, code, 0)
		assert.Equal(t, out.String(), "abc\n")
	})
	t.Run("tty", func(t *testing.T) {
		var out syncBuffer
		e, err := c.Exec(ctx, monitor.ExecConfig{ID: "e5", ProcessJSON: processJSON(t, true, "sh", "-c", "tty; stty size"), Terminal: true, ConsoleSize: monitor.ConsoleSize{20, 70}, Streams: monitor.Streams{Stdout: &out}})
		assert.NilError(t, err)
		code, err := e.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, code, 0)
		assert.Assert(t, is.Regexp(`^/dev/pts/\d+\r\n20 70\r\n$`, out.String()))
	})
	t.Run("resize", func(t *testing.T) {
		pr, pw := io.Pipe()
		var out syncBuffer
		e, err := c.Exec(ctx, monitor.ExecConfig{ID: "e6", ProcessJSON: processJSON(t, true, "sh", "-c", "stty -echo; read x; stty size"), Terminal: true, Streams: monitor.Streams{Stdin: pr, Stdout: &out}})
		assert.NilError(t, err)
		// the size is set when Resize returns (the shim answers after the
		// ioctl); typed before or after stty -echo, x only may echo
		assert.NilError(t, e.Resize(ctx, 50, 60))
		pw.Write([]byte("x\r"))
		code, err := e.Wait(ctx)
		pw.Close()
		assert.NilError(t, err)
		assert.Equal(t, code, 0)
		assert.Assert(t, is.Contains(out.String(), "50 60\r\n"))
		assert.Assert(t, errdefs.IsNotFound(e.Resize(ctx, 1, 1)))
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var out syncBuffer
				e, err := c.Exec(ctx, monitor.ExecConfig{ID: "c" + string(rune('a'+i)), ProcessJSON: processJSON(t, false, "sh", "-c", "echo $0; exit $0", string(rune('0'+i))), Streams: monitor.Streams{Stdout: &out}})
				assert.Check(t, err)
				if err != nil {
					return
				}
				code, err := e.Wait(ctx)
				assert.Check(t, err)
				assert.Check(t, is.Equal(code, i))
				assert.Check(t, is.Equal(out.String(), string(rune('0'+i))+"\n"))
			}(i)
		}
		wg.Wait()
	})
	t.Run("duplicate id", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		e, err := c.Exec(ctx, monitor.ExecConfig{ID: "dup", ProcessJSON: processJSON(t, false, "cat"), Streams: monitor.Streams{Stdin: pr}})
		assert.NilError(t, err)
		_, err = c.Exec(ctx, monitor.ExecConfig{ID: "dup", ProcessJSON: processJSON(t, false, "true")})
		assert.Assert(t, errdefs.IsConflict(err), "%v", err)
		pw.Close()
		_, err = e.Wait(ctx)
		assert.NilError(t, err)
	})
	assert.Equal(t, stopContainer(t, c, cfg).Code, 137)
	t.Run("not running", func(t *testing.T) {
		_, err := c.Exec(ctx, monitor.ExecConfig{ID: "late", ProcessJSON: processJSON(t, false, "true")})
		assert.Assert(t, errdefs.IsUnavailable(err) || errdefs.IsConflict(err), "%v", err)
	})
}

func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
	assert.NilError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			return atoi(strings.TrimSpace(v))
		}
	}
	t.Fatal("no PPid")
	return 0
}
