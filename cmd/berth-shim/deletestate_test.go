package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

// TestPlainDelete: the monitor deletes runc's state itself only when runc's
// delete of the stopped container would do nothing else: a private pid
// namespace, no poststop hook, no Intel RDT group, cgroups under
// /sys/fs/cgroup.
func TestPlainDelete(t *testing.T) {
	const plain = `{"cgroup_paths":{"":"/sys/fs/cgroup/unified/berth/c","memory":"/sys/fs/cgroup/memory/berth/c"},
		"intel_rdt_path":"","config":{"namespaces":[{"type":"NEWNS","path":""},{"type":"NEWPID","path":""}],
		"Hooks":{"poststop":null,"prestart":null}}}`
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		want   bool
	}{
		{"private pid namespace", func(map[string]any) {}, true},
		{"no pid namespace", func(m map[string]any) {
			cfg(m)["namespaces"] = []any{map[string]any{"type": "NEWNS", "path": ""}}
		}, false},
		{"joined pid namespace", func(m map[string]any) {
			cfg(m)["namespaces"] = []any{map[string]any{"type": "NEWPID", "path": "/proc/1/ns/pid"}}
		}, false},
		{"poststop hook", func(m map[string]any) {
			cfg(m)["Hooks"] = map[string]any{"poststop": []any{map[string]any{"path": "/bin/true"}}}
		}, false},
		{"intel rdt", func(m map[string]any) { m["intel_rdt_path"] = "/sys/fs/resctrl/c" }, false},
		{"cgroup elsewhere", func(m map[string]any) {
			m["cgroup_paths"] = map[string]any{"memory": "/tmp/memory/c"}
		}, false},
		{"cgroup path climbing out", func(m map[string]any) {
			m["cgroup_paths"] = map[string]any{"memory": "/sys/fs/cgroup/../../tmp"}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			assert.NilError(t, json.Unmarshal([]byte(plain), &m))
			tc.change(m)
			b, err := json.Marshal(m)
			assert.NilError(t, err)
			var st runcState
			assert.NilError(t, json.Unmarshal(b, &st))
			assert.Equal(t, st.plainDelete(), tc.want)
		})
	}
}

func cfg(m map[string]any) map[string]any { return m["config"].(map[string]any) }

// TestRemoveCgroupTree: sub-cgroups go first, a missing one counts as
// removed, and a directory that is not empty is an error (on a cgroup
// filesystem that is a cgroup that still holds a process: EBUSY).
func TestRemoveCgroupTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	assert.NilError(t, removeCgroupTree(dir))
	_, err := os.Stat(dir)
	assert.Assert(t, os.IsNotExist(err))
	assert.NilError(t, removeCgroupTree(dir))

	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "a"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "a", "cgroup.procs"), []byte("1\n"), 0o644))
	err = removeCgroupTree(dir)
	assert.ErrorIs(t, err, syscall.ENOTEMPTY)
}
