package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berth/registry/imagewire"
)

// With mainEnv set the test binary is berth-imagecopy.
const mainEnv = "BERTH_IMAGECOPY_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func lines(t *testing.T, b []byte) []imagewire.Line {
	t.Helper()
	var out []imagewire.Line
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var line imagewire.Line
		assert.NilError(t, json.Unmarshal(l, &line), "%s", l)
		out = append(out, line)
	}
	return out
}

// A request it cannot read or run ends in one Error line with the
// status of its class.
func TestRunErrors(t *testing.T) {
	var out bytes.Buffer
	assert.Check(t, is.Equal(run(context.Background(), strings.NewReader("{not json"), &out), 1))
	ls := lines(t, out.Bytes())
	assert.Assert(t, is.Len(ls, 1))
	assert.Assert(t, ls[0].Error != nil)
	assert.Check(t, is.Equal(ls[0].Error.Status, 500))

	out.Reset()
	dir := t.TempDir()
	req := imagewire.Request{Op: "frobnicate", Store: imagewire.Store{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), Driver: "vfs"}}
	b, _ := json.Marshal(req)
	assert.Check(t, is.Equal(run(context.Background(), bytes.NewReader(b), &out), 1))
	ls = lines(t, out.Bytes())
	assert.Assert(t, is.Len(ls, 1))
	assert.Assert(t, ls[0].Error != nil)
	assert.Check(t, is.Equal(ls[0].Error.Status, 400), "%+v", ls[0].Error)
	assert.Check(t, is.Contains(ls[0].Error.Message, "unknown op"))
}

// hangingRegistry accepts connections and never answers; each accept is
// signalled.
func hangingRegistry(t *testing.T) (addr string, accepted chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted = make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, unanswered
			accepted <- struct{}{}
		}
	}()
	return ln.Addr().String(), accepted
}

// startStuck starts the helper on a request to the hanging registry and
// returns once the helper waits on it, with the write end of its lifeline.
func startStuck(t *testing.T, addr string, accepted chan struct{}, stdout io.Writer) (*exec.Cmd, *os.File) {
	t.Helper()
	self, err := os.Executable()
	assert.NilError(t, err)
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "registries.conf"), nil, 0o600))
	req := imagewire.Request{
		Op:       imagewire.OpRemote,
		Store:    imagewire.Store{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), Driver: "vfs"},
		System:   imagewire.System{TmpDir: dir, RegistriesConf: filepath.Join(dir, "registries.conf"), BlobInfoCacheDir: dir},
		Registry: imagewire.Registry{Insecure: true},
		Ref:      addr + "/library/busybox:latest",
	}
	b, _ := json.Marshal(req)
	lr, lw, err := os.Pipe()
	assert.NilError(t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stdin = bytes.NewReader(b)
	cmd.Stdout = stdout
	cmd.ExtraFiles = []*os.File{lr}
	assert.NilError(t, cmd.Start())
	lr.Close()
	select { // the helper is waiting on the registry
	case <-accepted:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the helper never reached the registry")
	}
	return cmd, lw
}

// waitExit waits for the helper and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		assert.Assert(t, errors.As(err, &ee), "%v", err)
		return ee.Sys().(syscall.WaitStatus).ExitStatus()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the helper did not exit")
	}
	return -1
}

// When berthd goes away (its end of the lifeline closes) a helper in the
// middle of a copy exits at once, whatever the registry does: here one
// that accepts the connection and never answers. Three times.
func TestLifeline(t *testing.T) {
	addr, accepted := hangingRegistry(t)
	for round := 0; round < 3; round++ {
		cmd, lw := startStuck(t, addr, accepted, nil)
		lw.Close()
		assert.Check(t, is.Equal(waitExit(t, cmd), 3), "round %d", round)
	}
}

// SIGTERM (berthd gave the request up) cancels the copy: the helper ends
// with a cancelled request's error line.
func TestTermCancels(t *testing.T) {
	addr, accepted := hangingRegistry(t)
	var out bytes.Buffer
	cmd, lw := startStuck(t, addr, accepted, &out)
	defer lw.Close()
	assert.NilError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Check(t, is.Equal(waitExit(t, cmd), 1))
	ls := lines(t, out.Bytes())
	assert.Assert(t, len(ls) > 0, "no answer")
	last := ls[len(ls)-1]
	assert.Assert(t, last.Error != nil, "%+v", last)
	assert.Check(t, is.Equal(last.Error.Status, 499), "%+v", last.Error)
}
