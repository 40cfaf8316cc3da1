package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/berthd/berth/runtime/monitor"
)

// fakeRuntime is runc under another `--version`: everything else is runc's.
func fakeRuntime(t *testing.T, version string) string {
	t.Helper()
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	path := filepath.Join(t.TempDir(), "runc-fake")
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then printf '%%s\\ncommit: fake\\n' %q; exit 0; fi\nexec %s \"$@\"\n", version, runc)
	assert.NilError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

// The fast exec path reproduces the runc the equivalence suite was proven
// against; a runtime reporting any other version gets its own exec, and
// the shim says so once, not at every exec.
func TestExecFastPathOnlyForProvenRuntime(t *testing.T) {
	out, err := exec.Command("runc", "--version").Output()
	assert.NilError(t, err)
	installed, _, _ := strings.Cut(string(out), "\n")
	for _, tc := range []struct {
		name, version string
		direct        bool
	}{
		{"proven version", installed, true},
		{"another runc 1.1", "runc version 1.1.99", false},
		{"runc 1.2", "runc version 1.2.0", false},
		{"not runc", "crun version 1.1.5+ds1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bundle(t, false, "sleep", "600")
			cfg.RuntimeBinary = fakeRuntime(t, tc.version)
			ctx, cancel := testCtx()
			defer cancel()
			c, err := Launch(ctx, cfg)
			assert.NilError(t, err)
			assert.NilError(t, c.Start(ctx))
			for i := range 3 {
				b, err := json.Marshal(testProcess(false, "sh", "-c", "echo ran"))
				assert.NilError(t, err)
				var stdout syncBuffer
				e, err := c.Exec(ctx, monitor.ExecConfig{ID: fmt.Sprint("v", i), ProcessJSON: b, Streams: monitor.Streams{Stdout: &stdout}})
				assert.NilError(t, err)
				code, err := e.Wait(ctx)
				assert.NilError(t, err)
				assert.Equal(t, code, 0)
				assert.Equal(t, stdout.String(), "ran\n")
				assert.Equal(t, e.Direct(), tc.direct, "exec %d with %q", i, tc.version)
			}
			log, _ := os.ReadFile(filepath.Join(cfg.StateDir, "shim.log"))
			n := strings.Count(string(log), "the fast path is proven for")
			if tc.direct {
				assert.Equal(t, n, 0, "shim.log:\n%s", log)
			} else {
				assert.Equal(t, n, 1, "the refusal is logged once; shim.log:\n%s", log)
				assert.Assert(t, strings.Contains(string(log), tc.version), "shim.log:\n%s", log)
			}
		})
	}
}

// The installed runtime must be one the suite was proven against: if this
// fails, run TestExecEquivalence* against it and, if they pass, add its
// version to provenRuntimes (cmd/berth-shim/execpath.go).
func TestExecEquivalenceProvenRuntime(t *testing.T) {
	out, err := exec.Command("runc", "--version").Output()
	assert.NilError(t, err)
	installed, _, _ := strings.Cut(string(out), "\n")
	src, err := os.ReadFile("../../cmd/berth-shim/execpath.go")
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(string(src), fmt.Sprintf("%q", installed)), "%q is not among the proven runtimes", installed)
}
