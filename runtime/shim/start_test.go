package shim

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
)

// TestStartPaths: the start through the init's exec fifo (a runtime proven
// to be runc 1.1) and runc's own start run the same container.
func TestStartPaths(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run("fifo="+strconv.FormatBool(fast), func(t *testing.T) {
			cfg := bundle(t, false, "sh", "-c", "echo started; exit 4")
			cfg.FastExec = fast
			assert.Equal(t, run(t, cfg).Code, 4)
			o, _ := readLog(t, cfg.LogPath)
			assert.Equal(t, o, "started\n")
		})
	}
}

// TestStartAfterInitDied: a created init killed before the start fails the
// start (it does not hang), and the shim reports the exit.
func TestStartAfterInitDied(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run("fifo="+strconv.FormatBool(fast), func(t *testing.T) {
			cfg := bundle(t, false, "true")
			cfg.FastExec = fast
			ctx, cancel := testCtx()
			defer cancel()
			c, err := Launch(ctx, cfg)
			assert.NilError(t, err)
			assert.NilError(t, syscall.Kill(c.Pid(), syscall.SIGKILL))
			assert.Assert(t, c.Start(ctx) != nil)
			st, err := c.Wait(ctx)
			assert.NilError(t, err)
			assert.Equal(t, st.Code, 137)
			assert.NilError(t, c.Release(ctx))
			assertGone(t, cfg, c.ShimPid())
		})
	}
}

// TestReleaseThenSameID: berthd hears of the exit before the runtime's
// state is deleted, but a Release answers only after it, so the same
// container can be created again at once (a restart policy, docker start),
// the second and third time too. The released shim, berthd's child, is
// reaped.
func TestReleaseThenSameID(t *testing.T) {
	cfg := bundle(t, false, "sh", "-c", "exit 7")
	for i := 0; i < 3; i++ {
		ctx, cancel := testCtx()
		c, err := Launch(ctx, cfg)
		assert.NilError(t, err, "run %d", i)
		assert.NilError(t, c.Start(ctx))
		st, err := c.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, st.Code, 7)
		assert.NilError(t, c.Release(ctx))
		out, err := exec.Command("runc", "--root", env.runcRoot, "state", cfg.ID).CombinedOutput()
		assert.Assert(t, err != nil, "run %d: runc still has the container after the release: %s", i, out)
		for _, cg := range cgroupControllers {
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", cg, env.cgParent, cfg.ID))
			assert.Assert(t, os.IsNotExist(err), "run %d: cgroup %s left after the release", i, cg)
		}
		pid := c.ShimPid()
		pollUntil(t, "the shim is reaped", func() bool { return !childZombie(pid) && !processAlive(pid) })
		cancel()
	}
}

// childZombie: pid is an exited, unreaped child of this process.
func childZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(os.Getpid())
}

// TestReleaseKillsLeftovers: a container in the host's pid namespace leaves
// its init's children running when the init exits; the runtime state's
// deletion at the exit kills them and removes the cgroups (the monitor's
// own deletion of the state is only for private pid namespaces, where the
// kernel killed them with the init), the fast paths on and off.
func TestReleaseKillsLeftovers(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run("fast="+strconv.FormatBool(fast), func(t *testing.T) {
			cfg := bundle(t, false, "sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!; exit 3")
			cfg.FastExec = fast
			rewriteSpec(t, cfg, func(s *specs.Spec) {
				var ns []specs.LinuxNamespace
				for _, n := range s.Linux.Namespaces {
					if n.Type != specs.PIDNamespace {
						ns = append(ns, n)
					}
				}
				s.Linux.Namespaces = ns
			})
			assert.Equal(t, run(t, cfg).Code, 3)
			o, _ := readLog(t, cfg.LogPath)
			pid, err := strconv.Atoi(strings.TrimSpace(o))
			assert.NilError(t, err, "the leftover's pid: %q", o)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			assert.Assert(t, !processAlive(pid), "the leftover runs after the release")
		})
	}
}

// rewriteSpec changes the bundle's config.json.
func rewriteSpec(t *testing.T, cfg Config, change func(*specs.Spec)) {
	t.Helper()
	path := filepath.Join(cfg.Bundle, "config.json")
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	var spec specs.Spec
	assert.NilError(t, json.Unmarshal(b, &spec))
	change(&spec)
	b, err = json.Marshal(&spec)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(path, b, 0o644))
}
