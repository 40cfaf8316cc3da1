package main

import (
	"os/exec"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// TestLinks: berthd leaves containers/image to berth-imagecopy and BuildKit
// to berth-buildkitd (docs/CONTRIBUTING.md): what it links is what it
// holds in memory idle, and what a hostile registry or archive reaches.
func TestLinks(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	assert.NilError(t, err, string(out))
	buildkit := 0
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "go.podman.io/image/") {
			t.Errorf("berthd links %s: containers/image belongs in registry/transfer (berth-imagecopy)", p)
		}
		if strings.HasPrefix(p, "github.com/moby/buildkit/") {
			buildkit++
		}
		if p == "google.golang.org/grpc" || p == "github.com/berthd/berth/builder/buildkit" || p == "github.com/berthd/berth/registry/transfer" {
			t.Errorf("berthd links %s", p)
		}
	}
	// the Dockerfile parser of the classic builder, and what it needs
	assert.Check(t, buildkit <= 7, "berthd links %d packages of github.com/moby/buildkit", buildkit)
}
