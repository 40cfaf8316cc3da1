package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestGoErrorStrings: berth-nsexec prints an exec failure as runc's init
// does, with Go's error strings.
func TestGoErrorStrings(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "berth-nsexec")
	srcs, err := filepath.Glob("../berth-nsexec/*.c")
	assert.NilError(t, err)
	out, err := exec.Command("gcc", append([]string{"-O2", "-static", "-o", bin}, srcs...)...).CombinedOutput()
	assert.NilError(t, err, string(out))
	out, err = exec.Command(bin, "errors").Output()
	assert.NilError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	assert.Equal(t, len(lines), 133)
	for _, line := range lines {
		n, msg, _ := strings.Cut(line, " ")
		e, err := strconv.Atoi(n)
		assert.NilError(t, err)
		assert.Equal(t, msg, syscall.Errno(e).Error(), "errno %d", e)
	}
}

func TestProcessEnv(t *testing.T) {
	got, err := processEnv([]string{"A=1", "PATH=/bin", "B=2", "A=3", "HOME=", "C=", "D=x=y"})
	assert.NilError(t, err)
	assert.DeepEqual(t, got, []string{"A=3", "PATH=/bin", "B=2", "HOME=", "C=", "D=x=y"})
	for _, bad := range []string{"NOVALUE", "=x", "A=\x00", "\x00=1"} {
		_, err := processEnv([]string{bad})
		assert.Assert(t, errors.Is(err, errFallback), "%q", bad)
	}
}

func testFast() *fastExec {
	adj := 5
	return &fastExec{
		nsFlags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, cgroups: []string{"/sys/fs/cgroup/pids/c"}, cgroup2: "/sys/fs/cgroup/unified/c",
		filter: "/run/x/seccomp.bpf", oomAdj: &adj, lastCap: 40,
		caps: &ociCaps{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}},
	}
}

// records decodes berth-nsexec's config.
func records(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func TestHelperConfig(t *testing.T) {
	fe := testFast()
	p := `{"args":["sh","-c","x"],"env":["A=1","A=2"],"cwd":"/w","user":{"uid":33,"gid":44,"additionalGids":[5,6]},
		"capabilities":{"bounding":["CAP_CHOWN","CAP_NOPE","CAP_BPF"],"ambient":["CAP_NET_RAW"]},
		"rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":20}],"noNewPrivileges":true,"oomScoreAdj":5,
		"terminal":true,"consoleSize":{"height":24,"width":80}}`
	b, err := fe.helperConfig("cid", []byte(p), true)
	assert.NilError(t, err)
	assert.DeepEqual(t, records(b), []string{
		"ash", "a-c", "ax", "eA=2", "c/w", "u33", "g44", "G5", "G6",
		"B0", "B39", "A13", // CAP_NOPE ignored, as runc does
		"r7 10 20", "n1", "o5", "k_ses.cid", "f/run/x/seccomp.bpf",
		"x/sys/fs/cgroup/pids/c", "y/sys/fs/cgroup/unified/c", "s" + strconv.Itoa(syscall.CLONE_NEWPID|syscall.CLONE_NEWNS),
		"t1", "h24", "w80",
	})

	// No capabilities of its own: the container's.
	b, err = fe.helperConfig("cid", []byte(`{"args":["true"],"cwd":"/"}`), false)
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(records(b), "B5"))
	assert.Assert(t, is.Contains(records(b), "E5"))

	// A capability past the kernel's last is ignored.
	fe.lastCap = 38
	b, err = fe.helperConfig("cid", []byte(`{"args":["true"],"cwd":"/","capabilities":{"bounding":["CAP_BPF"]}}`), false)
	assert.NilError(t, err)
	assert.Assert(t, !strings.Contains(string(b), "B39"))
}

func TestHelperConfigFallbacks(t *testing.T) {
	cases := map[string]string{
		"unknown field":        `{"args":["true"],"cwd":"/","ioPriority":{"class":"IOPRIO_CLASS_IDLE"}}`,
		"unknown nested field": `{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0,"umask2":1}}`,
		"umask":                `{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0,"umask":18}}`,
		"apparmor":             `{"args":["true"],"cwd":"/","apparmorProfile":"x"}`,
		"selinux":              `{"args":["true"],"cwd":"/","selinuxLabel":"x"}`,
		"windows":              `{"args":["true"],"cwd":"/","commandLine":"x"}`,
		"no args":              `{"args":[],"cwd":"/"}`,
		"relative cwd":         `{"args":["true"],"cwd":"w"}`,
		"no cwd":               `{"args":["true"]}`,
		"other oom score":      `{"args":["true"],"cwd":"/","oomScoreAdj":6}`,
		"uid out of range":     `{"args":["true"],"cwd":"/","user":{"uid":2147483648,"gid":0}}`,
		"gid out of range":     `{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0,"additionalGids":[4294967295]}}`,
		"NUL in an arg":        `{"args":["a\u0000b"],"cwd":"/"}`,
		"bad env":              `{"args":["true"],"cwd":"/","env":["NOEQUALS"]}`,
		"unknown rlimit":       `{"args":["true"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOPE","soft":1,"hard":1}]}`,
		"terminal mismatch":    `{"args":["true"],"cwd":"/","terminal":true}`,
		"not JSON":             `{`,
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := testFast().helperConfig("cid", []byte(p), false)
			assert.Assert(t, errors.Is(err, errSpecFallback), "%v", err)
		})
	}
}

func FuzzHelperConfig(f *testing.F) {
	f.Add([]byte(`{"args":["sh"],"cwd":"/","env":["A=1"],"user":{"uid":1,"gid":2,"additionalGids":[3]}}`))
	f.Add([]byte(`{"args":["x"],"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","soft":1,"hard":2}],"terminal":true,"consoleSize":{"height":1,"width":2}}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := testFast().helperConfig("cid", p, false)
		if err != nil {
			if !errors.Is(err, errFallback) {
				t.Fatalf("error that is not a fallback: %v", err)
			}
			return
		}
		// Every record is a known tag, and the args come first.
		var proc struct{ Args []string }
		json.Unmarshal(p, &proc)
		recs := records(b)
		for i, r := range recs {
			if r == "" || !strings.ContainsRune("aecugGBEPIArnokfxysthw", rune(r[0])) {
				t.Fatalf("record %d %q", i, r)
			}
		}
		for i, a := range proc.Args {
			if recs[i] != "a"+a {
				t.Fatalf("arg %d: %q", i, recs[i])
			}
		}
	})
}

const hybridMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
39 33 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
40 33 0:35 /sub /mnt/elsewhere rw,relatime - cgroup cgroup rw,pids
41 33 0:35 / /sys/fs/cgroup/my\040pids rw,relatime - cgroup cgroup rw,pids
`

func TestInitCgroups(t *testing.T) {
	mounts, err := parseCgroupMounts(strings.NewReader(hybridMountinfo))
	assert.NilError(t, err)
	cg, err := parseInitCgroups([]byte("12:pids:/c1\n4:memory:/a/c1\n3:cpuacct,cpu:/c1\n1:name=systemd:/c1\n0::/c1\n"), mounts)
	assert.NilError(t, err)
	assert.DeepEqual(t, cg.v1, []string{
		"/sys/fs/cgroup/my pids/c1",
		"/sys/fs/cgroup/memory/a/c1",
		"/sys/fs/cgroup/cpu,cpuacct/c1",
		"/sys/fs/cgroup/systemd/c1",
	})
	assert.Equal(t, cg.v2, "/sys/fs/cgroup/unified/c1")
	assert.Equal(t, cg.freezer, "/sys/fs/cgroup/unified/c1/cgroup.freeze")
	_, err = parseInitCgroups([]byte("5:blkio:/c1\n"), mounts)
	assert.ErrorContains(t, err, "no mount for cgroup hierarchy")
}
