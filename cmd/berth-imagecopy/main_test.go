package main

import (
	"bytes"
	"encoding/json"
	"errors"
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
	assert.Check(t, is.Equal(run(strings.NewReader("{not json"), &out), 1))
	ls := lines(t, out.Bytes())
	assert.Assert(t, is.Len(ls, 1))
	assert.Assert(t, ls[0].Error != nil)
	assert.Check(t, is.Equal(ls[0].Error.Status, 500))

	out.Reset()
	dir := t.TempDir()
	req := imagewire.Request{Op: "frobnicate", Store: imagewire.Store{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), Driver: "vfs"}}
	b, _ := json.Marshal(req)
	assert.Check(t, is.Equal(run(bytes.NewReader(b), &out), 1))
	ls = lines(t, out.Bytes())
	assert.Assert(t, is.Len(ls, 1))
	assert.Assert(t, ls[0].Error != nil)
	assert.Check(t, is.Equal(ls[0].Error.Status, 400), "%+v", ls[0].Error)
	assert.Check(t, is.Contains(ls[0].Error.Message, "unknown op"))
}

// When berthd goes away (its end of the lifeline closes) a helper in the
// middle of a copy exits at once, whatever the registry does: here one
// that accepts the connection and never answers. Three times.
func TestLifeline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 16)
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
	self, err := os.Executable()
	assert.NilError(t, err)
	for round := 0; round < 3; round++ {
		dir := t.TempDir()
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "registries.conf"), nil, 0o600))
		req := imagewire.Request{
			Op:       imagewire.OpRemote,
			Store:    imagewire.Store{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), Driver: "vfs"},
			System:   imagewire.System{TmpDir: dir, RegistriesConf: filepath.Join(dir, "registries.conf"), BlobInfoCacheDir: dir},
			Registry: imagewire.Registry{Insecure: true},
			Ref:      ln.Addr().String() + "/library/busybox:latest",
		}
		b, _ := json.Marshal(req)
		lr, lw, err := os.Pipe()
		assert.NilError(t, err)
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), mainEnv+"=1")
		cmd.Stdin = bytes.NewReader(b)
		cmd.ExtraFiles = []*os.File{lr}
		assert.NilError(t, cmd.Start())
		lr.Close()
		select { // the helper is waiting on the registry
		case <-accepted:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the helper never reached the registry", round)
		}
		lw.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			assert.Assert(t, errors.As(err, &ee), "round %d: %v", round, err)
			assert.Check(t, is.Equal(ee.Sys().(syscall.WaitStatus).ExitStatus(), 3), "round %d", round)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: the helper outlived its lifeline", round)
		}
	}
}
