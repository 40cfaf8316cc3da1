package ociruntime

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berth/runtime/shim"
)

// fakeRuntime is an executable that prints version for --version.
func fakeRuntime(t *testing.T, version string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-runtime")
	assert.NilError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '"+version+"'\necho 'commit: x'\n"), 0o755))
	return p
}

func TestNewSetRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{Add: []string{"x"}}, "invalid runtime: x"},
		{"empty name", Config{Add: []string{"=/bin/x"}}, "invalid runtime: =/bin/x"},
		{"reserved", Config{Add: []string{"io.containerd.runc.v2=/bin/x"}}, "runtime name 'io.containerd.runc.v2' is reserved"},
		{"runc", Config{Add: []string{"runc=/bin/x"}}, "runtime name 'runc' is reserved"},
		{"twice", Config{Add: []string{"a=/bin/x", "a=/bin/y"}}, "runtime name 'a' is specified more than once"},
		{"unknown default", Config{Default: "crun"}, "specified default runtime 'crun' does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSet(tc.cfg)
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.Check(t, is.Error(err, tc.want))
		})
	}
}

func TestSetLookup(t *testing.T) {
	exec := t.TempDir()
	set, err := NewSet(Config{
		Default: "proven",
		Add: []string{
			"proven=" + fakeRuntime(t, "runc version 1.1.12"),
			"newer=" + fakeRuntime(t, "runc version 1.2.0"),
			"oldcrun=" + fakeRuntime(t, "crun version 1.8.1"),
			"gone=/nonexistent/runtime",
		},
		Args:     map[string][]string{"newer": {"--systemd-cgroup"}},
		ExecRoot: exec,
	})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(set.Names(), []string{"gone", "newer", "oldcrun", "proven", "runc"}))
	assert.Check(t, is.Equal(set.Default(), "proven"))

	r, err := set.Lookup("")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(r.Name, "proven"), "the default")
	assert.Check(t, r.FastExec, "runc 1.1 takes the fast path")
	assert.Check(t, is.Equal(r.Root, filepath.Join(exec, "runtimes", "proven")))
	assert.Check(t, is.Equal(r.Version, "runc version 1.1.12"))

	r, err = set.Lookup("newer")
	assert.NilError(t, err)
	assert.Check(t, !r.FastExec, "a version the fast path was not proven against runs execs itself")
	assert.Check(t, is.DeepEqual(r.Args, []string{"--systemd-cgroup"}))

	_, err = set.Lookup("nosuch")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.Error(err, "unknown or invalid runtime name: nosuch"))
	_, err = set.Lookup("gone")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.ErrorContains(err, "runtime gone: "))
	_, err = set.Lookup("oldcrun")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.ErrorContains(err, "runtime oldcrun cannot run containers on this host: "))

	info, def := set.Info()
	assert.Check(t, is.Equal(def, "proven"))
	assert.Check(t, is.DeepEqual(info["newer"].Args, []string{"--systemd-cgroup"}))
	assert.Check(t, info["oldcrun"].Status["berth.unusable"] != "")
	assert.Check(t, is.Len(info["proven"].Status, 0))
}

// TestLive: the monitors, the container runtime and the runtime commands
// all see a reloaded set at once.
func TestLive(t *testing.T) {
	exec := t.TempDir()
	first, err := NewSet(Config{Add: []string{"a=" + fakeRuntime(t, "runc version 1.1.12")}, ExecRoot: exec})
	assert.NilError(t, err)
	var l Live
	l.Store(first)

	r, err := l.Lookup("a")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(r, shim.Runtime{Path: first.byName["a"].Path, Root: filepath.Join(exec, "runtimes", "a"), FastExec: true}))
	name, err := l.Resolve("")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(name, "runc"))

	// the runtime commands go to the runtime whose state has the container
	assert.NilError(t, os.MkdirAll(filepath.Join(exec, "runtimes", "a", "c1"), 0o700))
	assert.Check(t, is.Equal(l.Load().holding("c1").Name, "a"))
	assert.Check(t, is.Equal(l.Load().holding("c2").Name, "runc"))

	second, err := NewSet(Config{Add: []string{"b=" + fakeRuntime(t, "runc version 1.2.0")}, Default: "b", ExecRoot: exec})
	assert.NilError(t, err)
	l.Store(second)
	_, err = l.Lookup("a")
	assert.Check(t, errdefs.IsInvalidArgument(err), "a is gone after the reload: %v", err)
	name, err = l.Resolve("")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(name, "b"))
	r, err = l.Lookup("")
	assert.NilError(t, err)
	assert.Check(t, !r.FastExec)
}

func TestCrunUnusable(t *testing.T) {
	for _, tc := range []struct{ version, hybrid, want string }{
		{"runc version 1.1.5+ds1", "hugetlb", ""},
		{"crun version 1.8.1", "hugetlb", "crun does not support this host's hybrid cgroups (cgroup v1, with the hugetlb controllers on the cgroup v2 hierarchy)"},
		{"crun version 1.8.1", "", "crun version 1.8.1 cannot read OCI runtime spec"},
		{"crun version 1.14.2", "", "cannot read OCI runtime spec"},
		{"crun version 1.14.3", "", ""},
		{"crun version 1.21", "", ""},
	} {
		got := crunUnusable(tc.version, tc.hybrid)
		if tc.want == "" {
			assert.Check(t, is.Equal(got, ""), tc.version)
		} else {
			assert.Check(t, is.Contains(got, tc.want), tc.version)
		}
	}
	for _, v := range []string{"runc version 1.1.5+ds1", "runc version 1.1.12"} {
		assert.Check(t, fastExecVersion.MatchString(v), v)
	}
	for _, v := range []string{"runc version 1.2.0", "crun version 1.1.5", "runc version 1.10.0", ""} {
		assert.Check(t, !fastExecVersion.MatchString(v), v)
	}
}
