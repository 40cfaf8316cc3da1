package compose

import (
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// berth reproduces the compose CLI that tools/go.mod builds: the same
// release (the version label) and the same compose-go (the config hash is
// compose-go's JSON). Bumping one without the other fails here.
func TestVersionsMatchTheComposeCLI(t *testing.T) {
	tools, ours := requires(t, "../tools/go.mod"), requires(t, "../go.mod")
	assert.Check(t, is.Equal(tools["github.com/docker/compose/v2"], "v"+ComposeVersion))
	const composeGo = "github.com/compose-spec/compose-go/v2"
	assert.Check(t, tools[composeGo] != "")
	assert.Check(t, is.Equal(ours[composeGo], tools[composeGo]), "berth's go.mod and tools/go.mod must name the same compose-go")
}

// requires reads the module versions a go.mod requires.
func requires(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && strings.Contains(f[0], ".") && strings.HasPrefix(f[1], "v") {
			out[f[0]] = f[1]
		}
	}
	return out
}
