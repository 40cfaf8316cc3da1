package oci

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// These tests run the generated specs with the real runc, as root, on the
// real cgroup hierarchy: the spec is only right if runc accepts it and the
// container sees what Docker's would.

// runcEnv is one busybox rootfs and a runc state dir shared by the cases.
type runcEnv struct {
	runc, root, rootfs, cgroupParent string
}

func newRuncEnv(t *testing.T) *runcEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the runc tests need root (make unit runs as root)")
	}
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err, "runc is required (Debian package runc)")
	dir := t.TempDir()
	e := &runcEnv{
		runc:         runc,
		root:         filepath.Join(dir, "state"),
		rootfs:       filepath.Join(dir, "rootfs"),
		cgroupParent: "/berth-oci-test-" + randHex(t, 6),
	}
	buildBusyboxRootfs(t, e.rootfs)
	t.Cleanup(func() { removeCgroupParent(t, e.cgroupParent) })
	return e
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	assert.NilError(t, err)
	return hex.EncodeToString(b)
}

// buildBusyboxRootfs makes the smallest useful rootfs: the host's static
// busybox with the applets the tests call, and passwd/group files.
func buildBusyboxRootfs(t *testing.T, root string) {
	t.Helper()
	busybox := "/usr/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		busybox = "/bin/busybox"
	}
	bin, err := os.ReadFile(busybox)
	assert.NilError(t, err, "busybox is required (Debian package busybox-static)")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "run", "root"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(root, "bin/busybox"), bin, 0o755))
	for _, applet := range []string{"sh", "id", "cat", "echo", "hostname", "touch", "grep", "pwd", "wc", "ls", "sleep", "head", "tr", "cut", "mknod"} {
		assert.NilError(t, os.Symlink("busybox", filepath.Join(root, "bin", applet)))
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\n",
		"etc/group":  "root:x:0:\ntty:x:5:\nwww-data:x:33:\nusers:x:100:www-data\n",
	}
	for name, content := range files {
		assert.NilError(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o644))
	}
}

// removeCgroupParent removes what runc left of the test's cgroup parent in
// every hierarchy (runc removes the container's own cgroup, not its parents).
func removeCgroupParent(t *testing.T, parent string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	for _, d := range dirs {
		children, _ := filepath.Glob(filepath.Join(d, "*"))
		for _, c := range children {
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				_ = os.Remove(c)
			}
		}
		if err := os.Remove(d); err != nil {
			t.Errorf("removing cgroup %s: %v", d, err)
		}
	}
}

// run generates the spec for in (filled with the env's rootfs and cgroup),
// runs it to completion with runc and returns its output.
func (e *runcEnv) run(t *testing.T, in Input) (stdout, stderr string, exitErr error) {
	t.Helper()
	id := randHex(t, 32)
	in.ID = id
	in.Rootfs = e.rootfs
	in.CgroupsPath = e.cgroupParent + "/" + id
	if in.HostConfig == nil {
		in.HostConfig = &container.HostConfig{}
	}
	if in.HostConfig.NetworkMode == "" && in.NetNSPath == "" {
		// a new, empty network namespace, so nothing touches the host's
		in.HostConfig.NetworkMode = "none"
	}
	s, err := Generate(in)
	assert.NilError(t, err)
	bundle := t.TempDir()
	b, err := json.Marshal(s)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, e.runc, "--root", e.root, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	// runc run removes the container when its process exits; make sure even
	// when it failed half-way.
	_ = exec.Command(e.runc, "--root", e.root, "delete", "--force", id).Run()
	return out.String(), errOut.String(), runErr
}

func sh(script string) *container.Config {
	return &container.Config{Cmd: []string{"sh", "-c", script}}
}

func TestRunc(t *testing.T) {
	e := newRuncEnv(t)
	host := ProbeHost()

	resolve := func(spec string, groupAdd ...string) User {
		u, err := ResolveUser(e.rootfs, spec, groupAdd)
		assert.NilError(t, err)
		return u
	}

	type tc struct {
		name  string
		in    Input
		want  string // exact stdout
		check func(t *testing.T, out string)
	}
	init := "/usr/bin/catatonit"
	if _, err := os.Stat(init); err != nil {
		init = "/usr/bin/tini-static"
	}
	cases := []tc{
		{
			name: "user, env, workdir, hostname",
			in: Input{
				Config: &container.Config{
					Cmd:        []string{"sh", "-c", `id -u; id -g; id -G; echo "$A"; pwd; hostname; echo "$HOSTNAME"; cat /proc/sys/kernel/domainname`},
					Env:        []string{"A=1"},
					WorkingDir: "/tmp",
					Hostname:   "berthbox",
					Domainname: "example.org",
				},
				HostConfig: &container.HostConfig{GroupAdd: []string{"users"}},
				User:       resolve("33", "users"),
			},
			want: "33\n33\n33 100\n1\n/tmp\nberthbox\nberthbox\nexample.org\n",
		},
		{
			name: "missing workdir is created",
			in: Input{
				Config: &container.Config{Cmd: []string{"pwd"}, WorkingDir: "/does/not/exist"},
			},
			want: "/does/not/exist\n",
		},
		{
			name: "default capabilities, seccomp, no-new-privileges off",
			in:   Input{Config: sh(`grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status`)},
			want: "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\n",
		},
		{
			name: "cap-drop ALL cap-add chown, no-new-privileges, seccomp unconfined",
			in: Input{
				Config: sh(`grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status`),
				HostConfig: &container.HostConfig{
					CapDrop:     []string{"all"},
					CapAdd:      []string{"chown"},
					SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"},
				},
			},
			want: "CapEff:\t0000000000000001\nNoNewPrivs:\t1\nSeccomp:\t0\n",
		},
		{
			name: "resources in cgroup v1",
			in: Input{
				Config: sh(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares`),
				HostConfig: &container.HostConfig{Resources: container.Resources{
					Memory:    64 << 20,
					PidsLimit: ptr(int64(50)),
					NanoCPUs:  500_000_000,
					CPUShares: 512,
				}},
			},
			want: "67108864\n50\n50000\n100000\n512\n",
		},
		{
			name: "read-only rootfs with a tmpfs",
			in: Input{
				Config: sh(`touch /x 2>/dev/null && echo rootfs-writable || echo rootfs-readonly; touch /run/ok && echo run-writable; grep ' /run ' /proc/mounts`),
				HostConfig: &container.HostConfig{
					ReadonlyRootfs: true,
					Tmpfs:          map[string]string{"/run": "size=1m,mode=1770"},
				},
			},
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				assert.Assert(t, is.Len(lines, 3), out)
				assert.Equal(t, lines[0], "rootfs-readonly")
				assert.Equal(t, lines[1], "run-writable")
				assert.Assert(t, is.Contains(lines[2], "size=1024k"))
				assert.Assert(t, is.Contains(lines[2], "mode=1770"))
				assert.Assert(t, is.Contains(lines[2], "noexec"))
			},
		},
		{
			name: "shm size, masked and read-only paths, network sysctls",
			in: Input{
				Config: sh(`grep ' /dev/shm ' /proc/mounts; wc -c < /proc/keys; echo x 2>/dev/null > /proc/sys/kernel/shmmax || echo sys-readonly; cat /proc/sys/net/ipv4/ping_group_range; cat /proc/sys/kernel/shmmni; ls /sys/class/net`),
				HostConfig: &container.HostConfig{
					ShmSize: 8 << 20,
					Sysctls: map[string]string{"kernel.shmmni": "1000"},
				},
			},
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				assert.Assert(t, is.Len(lines, 6), out)
				assert.Assert(t, is.Contains(lines[0], "size=8192k"))
				assert.Equal(t, strings.TrimSpace(lines[1]), "0")
				assert.Equal(t, lines[2], "sys-readonly")
				assert.Equal(t, strings.Join(strings.Fields(lines[3]), " "), "0 2147483647")
				assert.Equal(t, lines[4], "1000")
				assert.Equal(t, lines[5], "lo")
			},
		},
		{
			name: "ulimits, one above the host's hard limit",
			in: Input{
				Config: sh(`ulimit -Sn; ulimit -Hn; ulimit -Hc`),
				HostConfig: &container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{
					{Name: "nofile", Soft: 1 << 30, Hard: 1 << 30},
					{Name: "core", Soft: 0, Hard: 0},
				}}},
			},
			want: func() string {
				h := host.Rlimits["RLIMIT_NOFILE"].Hard
				return itoa(h) + "\n" + itoa(h) + "\n0\n"
			}(),
		},
		{
			name: "init",
			in: Input{
				Config:     sh(`cat /proc/1/cmdline | tr '\0' ' ' 2>/dev/null || cat /proc/1/cmdline; echo; echo $$`),
				HostConfig: &container.HostConfig{Init: ptr(true)},
				InitPath:   init,
			},
			check: func(t *testing.T, out string) {
				assert.Assert(t, is.Contains(out, "/sbin/docker-init"))
				assert.Assert(t, !strings.HasSuffix(strings.TrimSpace(out), "\n1"), "the command must not be pid 1: %q", out)
			},
		},
		{
			name: "privileged",
			in: Input{
				Config:     sh(`grep -E '^(CapEff|Seccomp):' /proc/self/status; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; wc -c < /proc/keys | tr -d ' '`),
				HostConfig: &container.HostConfig{Privileged: true},
			},
			check: func(t *testing.T, out string) {
				assert.Assert(t, is.Contains(out, "CapEff:\t"+capMask(host.Capabilities)+"\n"))
				assert.Assert(t, is.Contains(out, "Seccomp:\t0\n"))
				assert.Assert(t, is.Contains(out, "\nrw\n"), "/sys is writable")
				assert.Assert(t, !strings.HasSuffix(out, "\n0\n"), "/proc/keys is not masked")
			},
		},
	}
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	assert.NilError(t, os.WriteFile(hostsFile, []byte("127.0.0.1 localhost\n"), 0o644))
	dataDir := t.TempDir()
	shmMarker := "/dev/shm/berth-oci-test-" + randHex(t, 4)
	assert.NilError(t, os.WriteFile(shmMarker, nil, 0o600))
	t.Cleanup(func() { os.Remove(shmMarker) })
	cases = append(cases,
		tc{
			name: "runtime mounts, more memory settings, cpuset",
			in: Input{
				Config: sh(`cat /etc/hosts; touch /etc/hosts 2>/dev/null || echo hosts-readonly; touch /data/x && echo data-writable; ` +
					`cd /sys/fs/cgroup; cat memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes cpuset/cpuset.cpus; grep oom_kill_disable memory/memory.oom_control`),
				HostConfig: &container.HostConfig{Resources: container.Resources{
					Memory: 64 << 20, MemorySwap: -1, MemoryReservation: 32 << 20, OomKillDisable: ptr(true), CpusetCpus: "0",
				}},
				Mounts: []specs.Mount{
					{Destination: "/etc/hosts", Type: "bind", Source: hostsFile, Options: []string{"rbind", "ro"}},
					{Destination: "/data", Type: "bind", Source: dataDir, Options: []string{"rbind"}},
				},
			},
			want: "127.0.0.1 localhost\nhosts-readonly\ndata-writable\n9223372036854771712\n33554432\n0\noom_kill_disable 1\n",
		},
		tc{
			name: "device cgroup denies fuse by default",
			in:   Input{Config: sh(`mknod /dev/f c 10 229 && cat /dev/f 2>&1 | head -1`)},
			check: func(t *testing.T, out string) {
				assert.Assert(t, is.Contains(out, "can't open '/dev/f': Operation not permitted"))
			},
		},
		tc{
			name: "device cgroup rule and a mapped device",
			in: Input{
				Config: sh(`mknod /dev/f c 10 229 && echo made; cat /dev/f 2>&1 | head -1; echo x > /dev/mynull && echo mapped-ok`),
				HostConfig: &container.HostConfig{
					Resources: container.Resources{
						DeviceCgroupRules: []string{"c 10:229 rwm"},
						Devices:           []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rwm"}},
					},
				},
			},
			check: func(t *testing.T, out string) {
				// a read of an unmounted /dev/fuse fails with EPERM from the
				// driver, so look for the open failing, which the cgroup does
				assert.Assert(t, is.Contains(out, "made\n"))
				assert.Assert(t, !strings.Contains(out, "can't open"), out)
				assert.Assert(t, is.Contains(out, "mapped-ok"))
			},
		},
		tc{
			name: "host ipc and pid, private cgroup namespace",
			in: Input{
				Config:     sh(`ls /dev/shm; echo "pid $$"; grep memory /proc/self/cgroup`),
				HostConfig: &container.HostConfig{IpcMode: "host", PidMode: "host", CgroupnsMode: "private"},
			},
			check: func(t *testing.T, out string) {
				assert.Assert(t, is.Contains(out, filepath.Base(shmMarker)))
				assert.Assert(t, !strings.Contains(out, "pid 1\n"), out)
				assert.Assert(t, is.Regexp(`(?m)^\d+:memory:/$`, out))
			},
		},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := e.run(t, c.in)
			assert.NilError(t, err, "stdout: %s\nstderr: %s", out, errOut)
			if c.check != nil {
				c.check(t, out)
				return
			}
			assert.Equal(t, out, c.want, "stderr: %s", errOut)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func capMask(caps []string) string {
	var m uint64
	for i, n := range capabilityNames {
		if slices.Contains(caps, n) {
			m |= 1 << uint(i)
		}
	}
	return fmt.Sprintf("%016x", m)
}
