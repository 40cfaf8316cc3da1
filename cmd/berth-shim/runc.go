package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/berthd/berth/runtime/shim/proto"
)

// runtimeEnv is the shim's environment less what only the shim should see.
func runtimeEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, e := range env {
		if strings.HasPrefix(e, daemonEnv+"=") || strings.HasPrefix(e, proto.HoldEnv+"=") || strings.HasPrefix(e, wakeEnv+"=") || strings.HasPrefix(e, connsEnv+"=") || strings.HasPrefix(e, waitersEnv+"=") || strings.HasPrefix(e, "GOMAXPROCS=") {
			continue
		}
		out = append(out, e)
	}
	return out
}

var callSeq atomic.Int64

// runc runs the OCI runtime with args and the given stdio (nil: /dev/null)
// and waits for it. Its error, if any, is the runtime's own last error
// message, read from a per-call --log file, verbatim.
func (s *shim) runc(stdio []uintptr, args ...string) error {
	logPath := filepath.Join(s.dir, "runc-"+strconv.FormatInt(callSeq.Add(1), 10)+".log")
	defer os.Remove(logPath)
	return s.runcTo(logPath, stdio, args...)
}

// runcTo is runc with the runtime's log in logPath ("": the runtime logs
// to the stderr it is given, and the error is its exit status).
func (s *shim) runcTo(logPath string, stdio []uintptr, args ...string) error {
	argv := []string{s.runtimePath}
	if logPath != "" {
		argv = append(argv, "--log", logPath, "--log-format", "json")
	}
	argv = append(append(argv, s.rootArgs...), args...)
	if stdio == nil {
		null := s.devNull.Fd()
		stdio = []uintptr{null, null, null}
	}
	_, wait, err := s.reaper.start(argv, stdio, s.env)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.RuntimeBinary, err)
	}
	ws := <-wait
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	if msg := lastRuntimeError(logPath); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s %s failed: %s", s.cfg.RuntimeBinary, args[0], describe(ws))
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// lastRuntimeError returns the msg of the last error-level entry of a runc
// JSON log.
func lastRuntimeError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if !bytes.Contains(line, []byte(`"error"`)) && !bytes.Contains(line, []byte(`"fatal"`)) {
			continue
		}
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}

// readPid reads a pid file written by runc.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, b)
	}
	return pid, nil
}
