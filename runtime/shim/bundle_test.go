package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berthd/berth/runtime/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
)

// The test environment: a berth-shim binary, a busybox rootfs shared
// (read-only) by every test container, a runc root and a cgroup parent of
// our own, all removed at the end.
var env struct {
	base        string // short temp dir: state dirs must fit a unix socket path
	shimBin     string // as `make build` builds it
	testShimBin string // race-enabled under -race
	rootfs      string
	runcRoot    string
	cgParent    string
	seq         atomic.Int64
}

var cgroupControllers = []string{"memory", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd", "unified"}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_SHIMTEST_LAUNCHER") != "" {
		os.Exit(launcherMain())
	}
	code := func() int {
		defer teardown()
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, "shim tests: setup:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func setup() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("these tests run containers with runc and must run as root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return err
	}
	base, err := os.MkdirTemp("", "bst")
	if err != nil {
		return err
	}
	env.base = base
	env.cgParent = fmt.Sprintf("berth-shimtest-%d", os.Getpid())
	// The shim as `make build` builds it, for the measurements; under -race
	// the functional tests use a race-enabled shim, so its code is checked too.
	env.shimBin = filepath.Join(base, "berth-shim")
	if err := buildShim(env.shimBin, false); err != nil {
		return err
	}
	// berth-nsexec and berth-shim-sleep next to the shims, as `make
	// build` puts them.
	for _, c := range []string{"berth-nsexec", "berth-shim-sleep"} {
		if err := buildC(c, filepath.Join(base, c)); err != nil {
			return err
		}
	}
	env.testShimBin = env.shimBin
	if raceEnabled {
		// Shims inherit this: no 1s sleep at exit, and a race ends the
		// shim (and shows in its shim.log, which cleanup checks).
		os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
		env.testShimBin = filepath.Join(base, "berth-shim-race")
		if err := buildShim(env.testShimBin, true); err != nil {
			return err
		}
	}
	env.rootfs = filepath.Join(base, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(env.rootfs, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := os.ReadFile("/usr/bin/busybox")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(env.rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, n := range []string{"sh", "echo", "cat", "sleep", "id", "tty", "stty", "true", "ls", "head", "yes"} {
		if err := os.Symlink("busybox", filepath.Join(env.rootfs, "bin", n)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(env.rootfs, "bin", "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		return err
	}
	env.runcRoot = filepath.Join(base, "runc")
	return nil
}

func buildShim(out string, race bool, tags ...string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cgo := "CGO_ENABLED=0"
	if race {
		args, cgo = append(args, "-race"), "CGO_ENABLED=1"
	}
	build := exec.Command(gobin, append(args, "github.com/berthd/berth/cmd/berth-shim")...)
	build.Env = append(os.Environ(), cgo)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build berth-shim: %v\n%s", err, out)
	}
	return nil
}

// buildC builds one of berth's C helpers (cmd/<name>) as the Makefile does.
func buildC(name, out string) error {
	srcs, err := filepath.Glob("../../cmd/" + name + "/*.c")
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("%s sources: %v", name, err)
	}
	build := exec.Command("gcc", append([]string{"-O2", "-static", "-s", "-Wall", "-o", out}, srcs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", name, err, out)
	}
	return nil
}

func teardown() {
	if env.base == "" {
		return
	}
	for _, c := range cgroupControllers {
		os.Remove(filepath.Join("/sys/fs/cgroup", c, env.cgParent))
	}
	os.RemoveAll(env.base)
}

// bundle writes a bundle for args and returns a Config for it.
func bundle(t testing.TB, tty bool, args ...string) Config {
	t.Helper()
	id := fmt.Sprintf("t%d-%d", os.Getpid(), env.seq.Add(1))
	dir := filepath.Join(env.base, id)
	assert.NilError(t, os.MkdirAll(dir, 0o700))
	spec := testSpec(id, tty, args)
	b, err := json.MarshalIndent(spec, "", "\t")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	cfg := Config{
		Config: proto.Config{
			ID:          id,
			Bundle:      dir,
			LogPath:     filepath.Join(dir, "log.json"),
			RuntimeRoot: env.runcRoot,
			Terminal:    tty,
			FastExec:    true, // Debian's runc 1.1
		},
		StateDir:   filepath.Join(dir, "s"),
		ShimBinary: env.testShimBin,
	}
	t.Cleanup(func() { cleanupContainer(t, cfg) })
	return cfg
}

var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func testSpec(id string, tty bool, args []string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: env.rootfs, Readonly: true},
		Hostname: "shimtest",
		Process:  testProcess(tty, args...),
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + env.cgParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func testProcess(tty bool, args ...string) *specs.Process {
	return &specs.Process{
		Terminal: tty,
		Args:     args,
		Env:      []string{"PATH=/bin", "TERM=xterm"},
		Cwd:      "/",
		Capabilities: &specs.LinuxCapabilities{
			Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps,
		},
		NoNewPrivileges: true,
	}
}

func processJSON(t testing.TB, tty bool, args ...string) []byte {
	b, err := json.Marshal(testProcess(tty, args...))
	assert.NilError(t, err)
	return b
}

// cleanupContainer removes whatever a test left of a container, whether
// the test passed or not.
func cleanupContainer(t testing.TB, cfg Config) {
	c := &Client{dir: cfg.StateDir, sock: filepath.Join(cfg.StateDir, "shim.sock")}
	ctx, cancel := testCtx()
	defer cancel()
	if c.Kill(ctx, 9) == nil {
		c.Wait(ctx)
	}
	c.Release(ctx)
	exec.Command("runc", "--root", env.runcRoot, "delete", "--force", cfg.ID).Run()
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, "shim.log")); err == nil && strings.Contains(string(b), "DATA RACE") {
		t.Errorf("berth-shim reported a data race:\n%s", b)
	}
	for _, c := range cgroupControllers {
		os.Remove(filepath.Join("/sys/fs/cgroup", c, env.cgParent, cfg.ID))
	}
}

// assertGone checks that nothing of a finished container remains: the shim
// process (gone, or a zombie of an init that does not reap), the runtime
// state, the cgroups.
func assertGone(t *testing.T, cfg Config, shimPid int) {
	t.Helper()
	pollUntil(t, "shim exits", func() bool { return !processAlive(shimPid) })
	out, err := exec.Command("runc", "--root", env.runcRoot, "list", "-q").CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.Assert(t, !strings.Contains(string(out), cfg.ID), "runc still lists %s", cfg.ID)
	for _, c := range cgroupControllers {
		_, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, env.cgParent, cfg.ID))
		assert.Assert(t, os.IsNotExist(err), "cgroup %s/%s left behind", c, cfg.ID)
	}
	_, err = os.Stat(filepath.Join(cfg.StateDir, "shim.sock"))
	assert.Assert(t, os.IsNotExist(err), "shim.sock left behind")
}

// processAlive: a zombie is not alive (this machine's pid 1 does not reap
// orphans; a real init does).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
