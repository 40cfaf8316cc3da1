package shim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berth/runtime/monitor"
)

// The shim starts an exec itself (berth-nsexec) when it can reproduce
// exactly what `runc exec` does. These tests run the same probes through
// both paths in the same container and require the same results.

// sysprobe is a static test program: it makes calls the default seccomp
// profile refuses (and some it allows) and prints what each returned.
const sysprobeC = `
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>
static void show(const char *what, long r) {
	printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}
int main(void) {
	show("unshare(user)", unshare(CLONE_NEWUSER));
	show("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
	show("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3));
	show("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
	show("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
	show("bpf", syscall(SYS_bpf, 0, 0, 0));
	show("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
	show("personality(query)", personality(0xffffffff));
	show("x32 getpid", syscall(0x40000000 | SYS_getpid) > 0 ? 1 : syscall(0x40000000 | SYS_getpid));
	show("clone3", syscall(435 /* clone3 */, 0, 0));
	show("getpid>0", getpid() > 0);
	return 0;
}
`

var eq struct {
	rootfs string
}

// eqRootfs builds (once) a rootfs for the equivalence tests: busybox, users
// and groups, files that cannot be executed, a home owned by a user, and
// sysprobe.
func eqRootfs(t *testing.T) string {
	t.Helper()
	if eq.rootfs != "" {
		return eq.rootfs
	}
	root := filepath.Join(env.base, "eqroot")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "dir", "home/user", "private", "noexec"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	assert.NilError(t, os.Chown(filepath.Join(root, "home/user"), 1000, 1000))
	assert.NilError(t, os.Chmod(filepath.Join(root, "private"), 0o700))
	bb, err := os.ReadFile("/usr/bin/busybox")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755))
	for _, n := range []string{"sh", "echo", "cat", "sleep", "id", "tty", "stty", "true", "ls", "env", "readlink",
		"pwd", "ps", "stat", "grep", "unshare", "sort", "head", "sed", "tr", "wc", "test", "kill", "hostname", "cut", "ionice"} {
		assert.NilError(t, os.Symlink("busybox", filepath.Join(root, "bin", n)))
	}
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"etc/passwd":    {"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:A User:/home/user:/bin/sh\n", 0o644},
		"etc/group":     {"root:x:0:\ntty:x:5:\n# a comment\nuser:x:1000:\nstaff:x:50:user\n4242:x:77:\n", 0o644},
		"bin/noexec":    {"#!/bin/sh\n", 0o644},
		"bin/badinterp": {"#!/nonexistent/interp\n", 0o755},
		"bin/badfmt":    {"garbage\x00\x00\x00", 0o755},
	}
	for name, f := range files {
		assert.NilError(t, os.WriteFile(filepath.Join(root, name), []byte(f.data), f.mode))
	}
	src := filepath.Join(env.base, "sysprobe.c")
	assert.NilError(t, os.WriteFile(src, []byte(sysprobeC), 0o644))
	out, err := exec.Command("gcc", "-O2", "-static", "-o", filepath.Join(root, "bin", "sysprobe"), src).CombinedOutput()
	assert.NilError(t, err, string(out))
	// a noexec mount with an executable file (the exec fails its eaccess)
	noexec := filepath.Join(env.base, "noexecsrc")
	assert.NilError(t, os.MkdirAll(noexec, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(noexec, "bb"), bb, 0o755))
	eq.rootfs = root
	return root
}

// eqOptions vary the container.
type eqOptions struct {
	nnp      bool // no_new_privs for the init (and by default the execs)
	seccomp  bool // Docker's default profile
	cgroupNS bool
	caps     []string
	inherit  []string // inheritable and ambient
	oomAdj   int
	rlimits  []specs.POSIXRlimit
	hostNet  bool // no network namespace
	userNS   bool // a user namespace (the fast path leaves it to runc)
}

var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// eqContainer runs `sleep 600` in a container as Docker would set it up
// (seccomp profile, capabilities, rlimits, oom score, hostname, masked
// paths) and returns the container's process as the base for its execs.
func eqContainer(t *testing.T, o eqOptions) (*Client, *specs.Process) {
	t.Helper()
	root := eqRootfs(t)
	cfg := bundle(t, false, "sleep", "600")
	spec := testSpec(cfg.ID, false, []string{"sleep", "600"})
	spec.Root.Path = root
	spec.Hostname = "eqhost"
	p := spec.Process
	p.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=eqhost", "CID=" + cfg.ID}
	p.NoNewPrivileges = o.nnp
	caps := o.caps
	if caps == nil {
		caps = dockerCaps
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: o.inherit, Ambient: o.inherit}
	p.Rlimits = o.rlimits
	p.OOMScoreAdj = &o.oomAdj
	if o.cgroupNS {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if o.hostNet {
		spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	}
	if o.userNS {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		// sysfs cannot be mounted from a user namespace without its network namespace's
		spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" })
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/noexec", Type: "bind",
		Source: filepath.Join(env.base, "noexecsrc"), Options: []string{"rbind", "ro", "noexec"}})
	// /proc/keys stays readable: it shows the session keyring.
	spec.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/timer_list"}
	if o.seccomp {
		prof, err := seccomp.GetDefaultProfile(spec)
		assert.NilError(t, err)
		spec.Linux.Seccomp = prof
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(cfg.Bundle, "config.json"), b, 0o644))
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	return c, p
}

type execResult struct {
	Code           int
	Stdout, Stderr string
	Err            string // the start's error
	ErrCode        int    // its ProcessError exit code
	Direct         bool
}

var execSeq int

// runBoth runs p through the fast path, then through runc.
func runBoth(t *testing.T, c *Client, p *specs.Process, stdin string) (fast, slow execResult) {
	t.Helper()
	return runOne(t, c, p, stdin, "", false), runOne(t, c, p, stdin, "", true)
}

// runOne runs p; its stdin is sent once the output shows after.
func runOne(t *testing.T, c *Client, p *specs.Process, stdin, after string, viaRuntime bool) execResult {
	t.Helper()
	ctx, cancel := testCtx()
	defer cancel()
	b, err := json.Marshal(p)
	assert.NilError(t, err)
	execSeq++
	var out, errb syncBuffer
	cfg := monitor.ExecConfig{ID: fmt.Sprintf("eq%d", execSeq), ProcessJSON: b, Terminal: p.Terminal, Streams: monitor.Streams{Stdout: &out}}
	if !p.Terminal {
		cfg.Streams.Stderr = &errb
	} else {
		cfg.ConsoleSize = monitor.ConsoleSize{24, 80}
	}
	if stdin != "" && after == "" {
		cfg.Streams.Stdin = strings.NewReader(stdin)
	}
	if after != "" {
		pr, pw := io.Pipe()
		cfg.Streams.Stdin = pr
		go func() {
			for !strings.Contains(out.String(), after) {
				time.Sleep(5 * time.Millisecond)
			}
			pw.Write([]byte(stdin))
		}()
		defer pw.Close()
	}
	e, err := c.exec(ctx, cfg, viaRuntime)
	if err != nil {
		var pe *ProcessError
		assert.Assert(t, errors.As(err, &pe), "%v", err)
		return execResult{Err: pe.Message, ErrCode: pe.ExitCode}
	}
	code, err := e.Wait(ctx)
	assert.NilError(t, err)
	return execResult{Code: code, Stdout: out.String(), Stderr: errb.String(), Direct: e.Direct()}
}

var pipeInode = regexp.MustCompile(`(pipe|socket):\[\d+\]`)

// assertSame checks that both paths gave the same result, and that the
// fast one was taken.
func assertSame(t *testing.T, fast, slow execResult) {
	t.Helper()
	assert.Assert(t, fast.Direct || fast.Err != "", "the fast path was not taken")
	assert.Assert(t, !slow.Direct, "RuntimeExec was not honoured")
	norm := func(s string) string { return pipeInode.ReplaceAllString(s, "$1:[N]") }
	fast.Stdout, slow.Stdout = norm(fast.Stdout), norm(slow.Stdout)
	fast.Direct, slow.Direct = false, false
	assert.DeepEqual(t, fast, slow)
}

func procWith(base *specs.Process, f func(p *specs.Process)) *specs.Process {
	b, _ := json.Marshal(base)
	var p specs.Process
	json.Unmarshal(b, &p)
	p.Terminal = false
	f(&p)
	return &p
}

// The probes: what a process can see of its own setup.
const (
	probeSecurity = `grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|SigBlk|SigIgn|Umask|Speculation_Store_Bypass|SpeculationIndirectBranch|Cpus_allowed_list|Mems_allowed_list):' /proc/self/status; id`
	probeNS       = `for n in cgroup ipc mnt net pid pid_for_children uts user time time_for_children; do echo $n $(readlink /proc/self/ns/$n); done; hostname 2>/dev/null; cat /proc/self/cgroup`
	probeFS       = `pwd; stat -c '%n %a %u %g %F' /* /.* ; cat /proc/self/mountinfo | sed 's/^[0-9]* [0-9]* //'`
	probeLimits   = `cat /proc/self/limits; cat /proc/self/oom_score_adj; umask`
	probeEnv      = `env`
	// pid 1 is the container's init: known by its comm (from
	// /proc/1/stat), not its args, which ps reads from the init's memory
	// and shows as "[sleep]" when that read fails (seen once under load).
	probeSession = `set -- $(cat /proc/$$/stat); [ $5 = $$ ] && echo pgrp=self || echo pgrp=$5; [ $6 = $$ ] && echo sid=self || echo sid=$6; echo ppid=$4 tty_nr=$7 tpgid=$([ $8 = $$ ] && echo self || echo $8); ps -o pid,comm | grep -c '^ *1 sleep$'; ps -o pid | grep -qw $$ && echo visible`
	// A second shell lists its own fds (inherited ones, leaks included)
	// while it waits for ls: ls's /proc/self/fd holds ls's own directory
	// fd, and the outer shell's pipeline pipes come and go, both by timing.
	probeFds = `sh -c 'ls -l /proc/$$/fd/; :' | sed 's/.*[0-9] \([0-9]* ->\)/\1/'; stat -L -c '%u %g %a %F' /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; grep -h -e flags -e mnt_id /proc/$$/fdinfo/0 /proc/$$/fdinfo/1 /proc/$$/fdinfo/2`
	// Other containers' keyrings come and go: only this one's (whether the
	// process holds it shows in sysprobe's keyctl where seccomp allows it).
	probeKeys     = `grep " _ses\.$CID: " /proc/keys | tr -s ' ' | cut -d' ' -f1,2,4-`
	probeSyscalls = `sysprobe; unshare -U true; echo unshare=$?`
	probeMisc     = `for f in loginuid sessionid timerslack_ns personality coredump_filter oom_adj; do echo $f $(cat /proc/self/$f 2>&1); done; ionice -p $$; sed 's/-[0-9]*//' /proc/self/autogroup 2>&1; cut -d' ' -f9,18,19,40,41 /proc/$$/stat`
)

func TestExecEquivalence(t *testing.T) {
	for _, o := range []struct {
		name string
		opts eqOptions
	}{
		{"docker defaults", eqOptions{seccomp: true, oomAdj: 123, rlimits: coreAndStack}},
		{"no_new_privs", eqOptions{seccomp: true, nnp: true, cgroupNS: true}},
		{"unconfined, ambient", eqOptions{caps: append(dockerCaps, "CAP_SYS_ADMIN", "CAP_NET_ADMIN"), inherit: []string{"CAP_NET_ADMIN", "CAP_KILL"}, oomAdj: 5}},
		{"host network", eqOptions{seccomp: true, hostNet: true}},
	} {
		t.Run(o.name, func(t *testing.T) {
			c, base := eqContainer(t, o.opts)
			users := map[string]func(*specs.Process){
				"root": func(*specs.Process) {},
				"user": func(p *specs.Process) {
					p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 1000, 4242, 50}}
				},
				"uid without passwd entry": func(p *specs.Process) { p.User = specs.User{UID: 2000, GID: 3000} },
			}
			for uname, setUser := range users {
				for _, probe := range []struct{ name, script string }{
					{"security", probeSecurity}, {"namespaces", probeNS}, {"fs", probeFS}, {"limits", probeLimits},
					{"env", probeEnv}, {"session", probeSession}, {"fds", probeFds}, {"keys", probeKeys}, {"syscalls", probeSyscalls}, {"misc", probeMisc},
				} {
					t.Run(uname+"/"+probe.name, func(t *testing.T) {
						p := procWith(base, func(p *specs.Process) {
							setUser(p)
							p.Args = []string{"sh", "-c", probe.script}
						})
						fast, slow := runBoth(t, c, p, "")
						assertSame(t, fast, slow)
						assert.Equal(t, fast.Code, 0, "%s%s", fast.Stdout, fast.Stderr)
					})
				}
			}
		})
	}
}

func TestExecEquivalenceProcess(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true, oomAdj: 7, rlimits: coreAndStack})
	cases := []struct {
		name  string
		f     func(p *specs.Process)
		stdin string
	}{
		{"exit 0", func(p *specs.Process) { p.Args = []string{"true"} }, ""},
		{"exit 7 and streams", func(p *specs.Process) { p.Args = []string{"sh", "-c", "echo out; echo err >&2; exit 7"} }, ""},
		{"stdin", func(p *specs.Process) { p.Args = []string{"sh", "-c", "cat; echo done"} }, "line 1\nline 2\n"},
		{"killed", func(p *specs.Process) { p.Args = []string{"sh", "-c", "kill -9 $$"} }, ""},
		{"missing binary", func(p *specs.Process) { p.Args = []string{"nosuchcmd"} }, ""},
		{"missing path", func(p *specs.Process) { p.Args = []string{"/nosuch/cmd"} }, ""},
		{"not executable", func(p *specs.Process) { p.Args = []string{"/bin/noexec"} }, ""},
		{"directory", func(p *specs.Process) { p.Args = []string{"/dir"} }, ""},
		{"relative PATH entry", func(p *specs.Process) { p.Args = []string{"sh"}; p.Env = []string{"PATH=.:/nowhere"}; p.Cwd = "/bin" }, ""},
		{"empty PATH entry", func(p *specs.Process) { p.Args = []string{"sh"}; p.Env = []string{"PATH=:/nowhere"}; p.Cwd = "/bin" }, ""},
		{"no PATH", func(p *specs.Process) { p.Args = []string{"sh"}; p.Env = []string{"A=1"} }, ""},
		{"dot-slash path", func(p *specs.Process) { p.Args = []string{"./bin/sh", "-c", "echo ok"}; p.Cwd = "/" }, ""},
		{"PATH with dots", func(p *specs.Process) {
			p.Args = []string{"sh", "-c", "echo $0; cat /proc/self/cmdline | tr '\\0' ' '"}
			p.Env = []string{"PATH=/nowhere:/bin/../bin//"}
		}, ""},
		{"bad interpreter", func(p *specs.Process) { p.Args = []string{"/bin/badinterp"} }, ""},
		{"noexec mount", func(p *specs.Process) { p.Args = []string{"/noexec/bb", "true"} }, ""},
		{"noexec mount on PATH", func(p *specs.Process) { p.Args = []string{"bb", "true"}; p.Env = []string{"PATH=/noexec"} }, ""},
		{"bad format", func(p *specs.Process) { p.Args = []string{"/bin/badfmt"} }, ""},
		{"no permission to stat", func(p *specs.Process) {
			p.Args = []string{"/private/x"}
			p.User = specs.User{UID: 1000, GID: 1000}
		}, ""},
		{"cwd", func(p *specs.Process) { p.Args = []string{"pwd"}; p.Cwd = "/home/user" }, ""},
		{"missing cwd", func(p *specs.Process) { p.Args = []string{"pwd"}; p.Cwd = "/nosuchdir" }, ""},
		{"env duplicates and empty HOME", func(p *specs.Process) {
			p.Args = []string{"env"}
			p.Env = []string{"A=1", "PATH=/bin", "B=2", "A=3", "HOME=", "C="}
		}, ""},
		{"HOME kept", func(p *specs.Process) {
			p.Args = []string{"env"}
			p.Env = []string{"HOME=/elsewhere", "PATH=/bin"}
			p.User = specs.User{UID: 1000, GID: 1000}
		}, ""},
		{"exec's rlimits", func(p *specs.Process) {
			p.Args = []string{"sh", "-c", "cat /proc/self/limits"}
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NPROC", Soft: 100, Hard: 200}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
		}, ""},
		{"no rlimits, the container's caps", func(p *specs.Process) {
			p.Args = []string{"sh", "-c", "cat /proc/self/limits; grep Cap /proc/self/status"}
			p.Rlimits = nil
			p.Capabilities = nil
		}, ""},
		{"privileged", func(p *specs.Process) {
			all := append([]string{}, capNamesForTest...)
			p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			p.Args = []string{"sh", "-c", "grep Cap /proc/self/status; sysprobe"}
		}, ""},
		{"unknown capability", func(p *specs.Process) {
			p.Capabilities.Effective = append(p.Capabilities.Effective, "CAP_NO_SUCH")
			p.Args = []string{"grep", "Cap", "/proc/self/status"}
		}, ""},
		{"no_new_privs for the exec only", func(p *specs.Process) {
			p.NoNewPrivileges = true
			p.Args = []string{"sh", "-c", "grep -E 'NoNewPrivs|Seccomp' /proc/self/status; sysprobe"}
		}, ""},
		{"oom score asked equal", func(p *specs.Process) {
			seven := 7
			p.OOMScoreAdj = &seven
			p.Args = []string{"cat", "/proc/self/oom_score_adj"}
		}, ""},
		{"args with odd bytes", func(p *specs.Process) {
			p.Args = []string{"sh", "-c", `for a; do echo "[$a]"; done`, "x", "", " sp ace", "new\nline", "ünï"}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := procWith(base, tc.f)
			fast, slow := runBoth(t, c, p, tc.stdin)
			assertSame(t, fast, slow)
		})
	}
}

// Not RLIMIT_NOFILE: see TestExecNofile.
var coreAndStack = []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: 0, Hard: 0}, {Type: "RLIMIT_STACK", Soft: 4 << 20, Hard: 8 << 20}}

// TestExecNofile: runc 1.1's init (a Go 1.19 program) raises its soft
// limit of open files to the hard one, and sets the exec's rlimits from
// runc's side, racing with that: the process mostly gets the limits asked
// for, sometimes soft = hard. berth-nsexec gives the asked limits always,
// and soft = hard when none are asked, as runc does.
func TestExecNofile(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true})
	p := procWith(base, func(p *specs.Process) {
		p.Args = []string{"grep", "open files", "/proc/self/limits"}
		p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
	})
	fast, slow := runBoth(t, c, p, "")
	assert.Assert(t, fast.Direct)
	assert.Assert(t, is.Regexp(`^Max open files +100 +200 +files *\n$`, fast.Stdout))
	t.Logf("runc: %q", slow.Stdout)
	assert.Assert(t, is.Regexp(`^Max open files +(100|200) +200 +files *\n$`, slow.Stdout))

	p.Rlimits = nil
	fast, slow = runBoth(t, c, p, "")
	assertSame(t, fast, slow)
	assert.Assert(t, is.Regexp(`^Max open files +(\d+) +(\d+) +files *\n$`, fast.Stdout))
	f := strings.Fields(fast.Stdout)
	assert.Equal(t, f[3], f[4], "soft = hard")
}

var capNamesForTest = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func TestExecEquivalenceTTY(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true, oomAdj: 1})
	for _, user := range []specs.User{{}, {UID: 1000, GID: 1000, AdditionalGids: []uint32{5}}} {
		t.Run(fmt.Sprint("uid ", user.UID), func(t *testing.T) {
			p := procWith(base, func(p *specs.Process) {
				p.Terminal = true
				p.User = user
				p.Env = append(p.Env, "TERM=xterm")
				p.Args = []string{"sh", "-c", probeSession + "; " + probeFds + `; tty | sed 's/[0-9]*$/N/'; stty size; stty -a | head -1; echo READY; read x; echo "got $x"`}
			})
			p.Terminal = true
			fast := runOne(t, c, p, "typed\r", "READY", false)
			slow := runOne(t, c, p, "typed\r", "READY", true)
			assertSame(t, fast, slow)
			assert.Assert(t, is.Contains(fast.Stdout, "got typed"))
			assert.Assert(t, is.Contains(fast.Stdout, "24 80"))
			assert.Assert(t, is.Regexp(`tpgid=self\r\n1\r\n`, fast.Stdout), "pid 1 is the container's init")
		})
	}
	t.Run("exec failure on the terminal", func(t *testing.T) {
		p := procWith(base, func(p *specs.Process) { p.Args = []string{"/bin/badfmt"} })
		p.Terminal = true
		fast, slow := runBoth(t, c, p, "")
		assertSame(t, fast, slow)
	})
}

// TestExecSameFilter compares the seccomp filters the kernel holds for a
// process of each path with the container init's: berth-nsexec installs a
// byte-identical copy. runc compiles the profile again for each exec, and
// the stub it puts in front varies from run to run (it walks a Go map), so
// its filters are compared by what they decide.
func TestExecSameFilter(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true})
	dump := func(pid int) []byte {
		out, err := exec.Command(filepath.Join(env.base, "berth-nsexec"), "filter", itoa(pid)).Output()
		assert.NilError(t, err)
		return out
	}
	initFilter := dump(c.Pid())
	assert.Assert(t, len(initFilter) > 1000)
	ctx, cancel := testCtx()
	defer cancel()
	for _, viaRuntime := range []bool{false, true} {
		for _, nnp := range []bool{false, true} {
			p := procWith(base, func(p *specs.Process) { p.Args = []string{"sh", "-c", "echo ready; read x"}; p.NoNewPrivileges = nnp })
			b, _ := json.Marshal(p)
			pr, pw := io.Pipe()
			var out syncBuffer
			execSeq++
			e, err := c.exec(ctx, monitor.ExecConfig{ID: fmt.Sprint("f", execSeq), ProcessJSON: b, Streams: monitor.Streams{Stdin: pr, Stdout: &out}}, viaRuntime)
			assert.NilError(t, err)
			assert.Equal(t, e.Direct(), !viaRuntime)
			// runc reports the pid before the process has loaded its filter
			pollUntil(t, "the exec runs sh", func() bool { return out.String() != "" })
			got := dump(e.Pid())
			if viaRuntime {
				assertSameDecisions(t, got, initFilter)
			} else {
				assert.Assert(t, string(got) == string(initFilter), "nnp=%v: filters differ", nnp)
			}
			pw.Close()
			_, err = e.Wait(ctx)
			assert.NilError(t, err)
		}
	}
}

type sockFilter struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

// parseFilters reads berth-nsexec's filter dump: "BNSF", a count, then
// each filter's length and instructions.
func parseFilters(t *testing.T, b []byte) [][]sockFilter {
	t.Helper()
	assert.Assert(t, len(b) >= 8 && string(b[:4]) == "BNSF")
	le := binary.LittleEndian
	n := int(le.Uint32(b[4:]))
	b = b[8:]
	var progs [][]sockFilter
	for i := 0; i < n; i++ {
		l := int(le.Uint32(b))
		b = b[4:]
		prog := make([]sockFilter, l)
		for j := range prog {
			prog[j] = sockFilter{le.Uint16(b), b[2], b[3], le.Uint32(b[4:])}
			b = b[8:]
		}
		progs = append(progs, prog)
	}
	assert.Equal(t, len(b), 0)
	return progs
}

// runBPF runs a classic BPF seccomp program on a seccomp_data.
func runBPF(t *testing.T, prog []sockFilter, data []byte) uint32 {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		jump := func(cond bool) {
			if cond {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		}
		switch in.code {
		case 0x20: // ld [k]
			a = binary.LittleEndian.Uint32(data[in.k:])
		case 0x00:
			a = in.k
		case 0x01:
			x = in.k
		case 0x60:
			a = mem[in.k]
		case 0x61:
			x = mem[in.k]
		case 0x02:
			mem[in.k] = a
		case 0x03:
			mem[in.k] = x
		case 0x07:
			x = a
		case 0x87:
			a = x
		case 0x04:
			a += in.k
		case 0x14:
			a -= in.k
		case 0x54:
			a &= in.k
		case 0x44:
			a |= in.k
		case 0x64:
			a <<= in.k
		case 0x74:
			a >>= in.k
		case 0x05:
			pc += int(in.k)
		case 0x15:
			jump(a == in.k)
		case 0x25:
			jump(a > in.k)
		case 0x35:
			jump(a >= in.k)
		case 0x45:
			jump(a&in.k != 0)
		case 0x1d:
			jump(a == x)
		case 0x2d:
			jump(a > x)
		case 0x3d:
			jump(a >= x)
		case 0x4d:
			jump(a&x != 0)
		case 0x06:
			return in.k
		case 0x16:
			return a
		default:
			t.Fatalf("BPF instruction %#x not handled", in.code)
		}
	}
	t.Fatal("BPF program ran off its end")
	return 0
}

// decide is the kernel's verdict over a filter stack: the action of
// highest precedence (the lowest, as a signed value).
func decide(t *testing.T, progs [][]sockFilter, data []byte) uint32 {
	ret := uint32(0x7fff0000) // SECCOMP_RET_ALLOW
	for _, p := range progs {
		r := runBPF(t, p, data)
		if int32(r&0xffff0000) < int32(ret&0xffff0000) {
			ret = r
		}
	}
	return ret
}

// assertSameDecisions runs both filter stacks on every syscall number of
// x86_64, i386 and x32 (and an unknown architecture) with argument
// patterns the default profile tests (clone and unshare flags, socket
// families, personality values).
func assertSameDecisions(t *testing.T, got, want []byte) {
	t.Helper()
	g, w := parseFilters(t, got), parseFilters(t, want)
	args := [][6]uint64{{}, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}}
	for i := 0; i < 6; i++ {
		for _, v := range []uint64{0x10000000, 0x7e020000, 0x20008, 0x8, 0x20000, 40, 16, 0xffffffff, 1, 2, 0x80000000} {
			var a [6]uint64
			a[i] = v
			args = append(args, a)
		}
	}
	data := make([]byte, 64)
	checked := 0
	verdicts := map[uint32]bool{}
	for _, arch := range []uint32{0xc000003e, 0x40000003, 0xdeadbeef} {
		for _, base := range []uint32{0, 0x40000000} {
			for nr := uint32(0); nr < 600; nr++ {
				for _, a := range args {
					binary.LittleEndian.PutUint32(data[0:], base|nr)
					binary.LittleEndian.PutUint32(data[4:], arch)
					for i, v := range a {
						binary.LittleEndian.PutUint64(data[16+8*i:], v)
					}
					dg, dw := decide(t, g, data), decide(t, w, data)
					if dg != dw {
						t.Fatalf("arch %#x nr %#x args %x: %#x, want %#x", arch, base|nr, a, dg, dw)
					}
					verdicts[dw] = true
					checked++
				}
			}
		}
	}
	t.Logf("%d syscall cases decided alike", checked)
	// allowed, refused with EPERM, ENOSYS for unknown numbers, killed for
	// a foreign architecture: the comparison saw all of them
	for _, v := range []uint32{0x7fff0000, 0x50001, 0x50026, 0} {
		assert.Assert(t, verdicts[v], "no case decided %#x", v)
	}
}

func TestExecFallbacks(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true})
	ctx, cancel := testCtx()
	defer cancel()
	run := func(raw []byte) (*Exec, error) {
		execSeq++
		return c.Exec(ctx, monitor.ExecConfig{ID: fmt.Sprint("fb", execSeq), ProcessJSON: raw, Streams: monitor.Streams{Stdout: io.Discard}})
	}
	// A field the fast path does not know: runc runs it.
	var m map[string]any
	b, _ := json.Marshal(procWith(base, func(p *specs.Process) { p.Args = []string{"true"} }))
	json.Unmarshal(b, &m)
	m["ioPriority"] = map[string]any{"class": "IOPRIO_CLASS_IDLE"}
	b, _ = json.Marshal(m)
	e, err := run(b)
	assert.NilError(t, err)
	assert.Assert(t, !e.Direct())
	code, err := e.Wait(ctx)
	assert.NilError(t, err)
	assert.Equal(t, code, 0)
	// A different oom score than the container's: runc decides.
	b, _ = json.Marshal(procWith(base, func(p *specs.Process) {
		p.Args = []string{"true"}
		v := 500
		p.OOMScoreAdj = &v
	}))
	e, err = run(b)
	assert.NilError(t, err)
	assert.Assert(t, !e.Direct())
	e.Wait(ctx)

	t.Run("user namespace", func(t *testing.T) {
		// the mapped root must reach the rootfs under the test's base dir
		assert.NilError(t, os.Chmod(env.base, 0o711))
		t.Cleanup(func() { os.Chmod(env.base, 0o700) })
		c2, base2 := eqContainer(t, eqOptions{seccomp: true, userNS: true})
		b, _ := json.Marshal(procWith(base2, func(p *specs.Process) { p.Args = []string{"sh", "-c", "cat /proc/self/uid_map"} }))
		var out syncBuffer
		e, err := c2.Exec(ctx, monitor.ExecConfig{ID: "userns", ProcessJSON: b, Streams: monitor.Streams{Stdout: &out}})
		assert.NilError(t, err)
		assert.Assert(t, !e.Direct())
		code, err := e.Wait(ctx)
		assert.NilError(t, err)
		assert.Equal(t, code, 0)
		assert.Assert(t, is.Regexp(`^ +0 +100000 +65536\n$`, out.String()))
	})
	t.Run("forced by the environment", func(t *testing.T) {
		t.Setenv("BERTH_EXEC_RUNC", "1")
		c2, base2 := eqContainer(t, eqOptions{})
		b, _ := json.Marshal(procWith(base2, func(p *specs.Process) { p.Args = []string{"true"} }))
		e, err := c2.Exec(ctx, monitor.ExecConfig{ID: "forced", ProcessJSON: b})
		assert.NilError(t, err)
		assert.Assert(t, !e.Direct())
		e.Wait(ctx)
	})
}

// TestExecPaused: an exec in a paused (frozen) container is runc's to
// refuse; the fast path must not put a process in the frozen cgroup.
func TestExecPaused(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true})
	id := filepath.Base(filepath.Dir(c.StateDir()))
	runc := func(args ...string) {
		out, err := exec.Command("runc", append([]string{"--root", env.runcRoot}, args...)...).CombinedOutput()
		assert.NilError(t, err, string(out))
	}
	runc("pause", id)
	p := procWith(base, func(p *specs.Process) { p.Args = []string{"true"} })
	fast := runOne(t, c, p, "", "", false)
	slow := runOne(t, c, p, "", "", true)
	assert.Assert(t, is.Contains(fast.Err, "paused"))
	assert.DeepEqual(t, fast, slow)
	runc("resume", id)
	fast, slow = runBoth(t, c, p, "")
	assertSame(t, fast, slow)
}

// TestExecFastPathSpeed compares `true` through both paths.
func TestExecFastPathSpeed(t *testing.T) {
	c, base := eqContainer(t, eqOptions{seccomp: true})
	b, _ := json.Marshal(procWith(base, func(p *specs.Process) { p.Args = []string{"true"} }))
	median := func(viaRuntime bool) time.Duration {
		var d []time.Duration
		for i := 0; i < 15; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			start := time.Now()
			execSeq++
			e, err := c.exec(ctx, monitor.ExecConfig{ID: fmt.Sprint("s", execSeq), ProcessJSON: b}, viaRuntime)
			assert.NilError(t, err)
			_, err = e.Wait(ctx)
			assert.NilError(t, err)
			d = append(d, time.Since(start))
			cancel()
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	fast, slow := median(false), median(true)
	t.Logf("exec of true, median of 15: berth-nsexec %v, runc exec %v (%.2fx)", fast, slow, float64(fast)/float64(slow))
	assert.Assert(t, fast < slow/2, "fast %v, runc %v", fast, slow)
}
