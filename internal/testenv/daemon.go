// Package testenv runs the real parts for end-to-end tests: a berthd on a
// temporary socket, data root and exec root, the docker CLI pointed at it,
// and a local registry. Everything a test starts is stopped by PID and
// cleaned up when the test ends, even when it fails.
package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/icmd"
)

// Daemon is one berthd started by a test.
type Daemon struct {
	Root     string // everything of this daemon lives under Root
	Sock     string
	DataRoot string
	ExecRoot string
	Args     []string // extra berthd flags
	Net      NetSlot  // the daemon's bridge name and address block
	// NetNS, when set, is a network namespace file the daemon runs in
	// (through nsenter) instead of the host's.
	NetNS   string
	LogPath string
	// DaemonEnv is added to the daemon's environment at its next Start.
	DaemonEnv []string
	starts    int
	cmd       *exec.Cmd
	waited    chan struct{}
	config    string // DOCKER_CONFIG dir for the CLI
}

var (
	buildOnce sync.Once
	berthdBin string
	buildErr  error
)

// RepoRoot is the top of the berth checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the berthd binary to test: $BERTHD_BIN, or bin/berthd built
// from this checkout once per test process (with the shim beside it).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if b := os.Getenv("BERTHD_BIN"); b != "" {
			berthdBin = b
			return
		}
		root := RepoRoot()
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", err, out)
			return
		}
		berthdBin = filepath.Join(root, "bin", "berthd")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return berthdBin
}

// RequireRoot fails (not skips) the test when not root: the end-to-end tests
// are part of `make test` and CI runs them as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("end-to-end tests need root (run `make test` as root)")
	}
}

// StartDaemon starts berthd with a fresh root and stops it at test end.
func StartDaemon(t testing.TB, extraArgs ...string) *Daemon {
	t.Helper()
	return StartDaemonIn(t, "", extraArgs...)
}

// StartDaemonIn is StartDaemon in the network namespace at netnsPath ("":
// the host's), for tests of host-wide network state (sysctls, iptables
// policies) that must not touch the host's.
func StartDaemonIn(t testing.TB, netnsPath string, extraArgs ...string) *Daemon {
	t.Helper()
	RequireRoot(t)
	root, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Root:     root,
		Sock:     filepath.Join(root, "docker.sock"),
		DataRoot: filepath.Join(root, "data"),
		ExecRoot: filepath.Join(root, "run"),
		LogPath:  filepath.Join(root, "berthd.log"),
		config:   filepath.Join(root, "docker-config"),
		NetNS:    netnsPath,
	}
	d.Net = TakeNetSlot(t)
	d.Args = append(d.Net.Args(), extraArgs...)
	_ = os.MkdirAll(d.config, 0o700)
	if err := d.installBuildx(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cleanup(t) })
	d.Start(t)
	return d
}

// Start starts (or restarts) the daemon process and waits until it
// answers and its restore phase is over (the API is served meanwhile).
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	d.StartServing(t)
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(d.Log(), restorePhaseOver) < d.starts {
		select {
		case <-d.waited:
			t.Fatalf("berthd exited during its restore:\n%s", d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd did not end its restore in time:\n%s", d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restorePhaseOver is berthd's log line once its restore phase is over.
const restorePhaseOver = `msg="restore phase over`

// StartServing starts (or restarts) the daemon process and waits for
// /_ping only: its restore may still run.
func (d *Daemon) StartServing(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-H", "unix://" + d.Sock, "--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "--debug"}, d.Args...)
	cmd := exec.Command(Binary(t), args...)
	if d.NetNS != "" {
		cmd = exec.Command("nsenter", append([]string{"--net=" + d.NetNS, "--", Binary(t)}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(d.DaemonEnv) > 0 {
		cmd.Env = append(os.Environ(), d.DaemonEnv...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d.cmd = cmd
	d.starts++
	d.waited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.waited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.waited:
			t.Fatalf("berthd exited at start:\n%s", d.Log())
		default:
		}
		if r := icmd.RunCmd(d.Cmd("version", "--format", "{{.Server.Version}}")); r.ExitCode == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("berthd did not answer in time:\n%s", d.Log())
}

// Pid is the daemon's process id (0 when stopped).
func (d *Daemon) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Stop sends SIGTERM and waits; Kill sends SIGKILL and waits.
func (d *Daemon) Stop(t testing.TB) { d.signal(t, syscall.SIGTERM) }
func (d *Daemon) Kill(t testing.TB) { d.signal(t, syscall.SIGKILL) }

func (d *Daemon) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.waited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.waited
		t.Errorf("berthd did not stop on %v in 30s", sig)
	}
	d.cmd = nil
}

// Restart stops the daemon with sig and starts it again on the same roots.
func (d *Daemon) Restart(t testing.TB, sig syscall.Signal) {
	t.Helper()
	d.signal(t, sig)
	d.Start(t)
}

// Env is the environment for clients of this daemon.
func (d *Daemon) Env() []string {
	return append(os.Environ(), "DOCKER_HOST=unix://"+d.Sock, "DOCKER_CONFIG="+d.config, "DOCKER_CLI_HINTS=false")
}

// Cmd builds a docker CLI command against this daemon.
func (d *Daemon) Cmd(args ...string) icmd.Cmd {
	c := icmd.Command("docker", args...)
	c.Env = d.Env()
	c.Timeout = 2 * time.Minute
	return c
}

// Docker runs the docker CLI against this daemon.
func (d *Daemon) Docker(args ...string) *icmd.Result {
	return icmd.RunCmd(d.Cmd(args...))
}

// DockerOK runs the docker CLI and fails the test when it does not exit 0.
func (d *Daemon) DockerOK(t testing.TB, args ...string) string {
	t.Helper()
	r := d.Docker(args...)
	if r.ExitCode != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Stdout(), r.Stderr())
	}
	return r.Stdout()
}

// Log is the daemon's log so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

func (d *Daemon) cleanup(t testing.TB) {
	if d.cmd != nil {
		// remove what the test left through the API, so the daemon tears it
		// down the way it should; then stop it
		ids := strings.Fields(d.Docker("ps", "-aq").Stdout())
		if len(ids) > 0 {
			d.Docker(append([]string{"rm", "-fv"}, ids...)...)
		}
		d.Docker("network", "prune", "-f")
		d.Docker("volume", "prune", "-af")
		d.Stop(t)
		// every container is gone: so must their monitors be (one in its
		// exit grace takes a moment)
		for _, pid := range d.waitShimsGone(10 * time.Second) {
			t.Errorf("monitor %d outlived the removal of every container and its berthd: killed", pid)
		}
	}
	// a daemon the test stopped itself may leave containers running, as a
	// host's berthd does; they go with the test
	d.killLeftContainers()
	d.waitBuildKitGone(t)
	if t.Failed() {
		t.Logf("berthd log (%s):\n%s", d.LogPath, tail(d.Log(), 60))
	}
	UnmountUnder(d.Root)
	if t.Failed() && os.Getenv("BERTH_KEEP_FAILED") != "" {
		t.Logf("kept %s", d.Root)
		return
	}
	_ = os.RemoveAll(d.Root)
}

// MountsUnder lists mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// UnmountUnder lazily unmounts everything at or below dir.
func UnmountUnder(dir string) {
	for _, m := range MountsUnder(dir) {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
