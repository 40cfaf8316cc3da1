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

// TestNoReflectMethod: nothing berthd links calls a method by name through
// reflection (text/template's executor, reflect.Value.MethodByName): a
// program that can keeps every exported method of every type it links,
// which made berthd 34.0 MB instead of 29.6 and ~2.5 MB more resident idle
// (runtime/logtag renders log tags without it). The linker marks such
// callers <ReflectMethod> in its -dumpdep graph.
func TestNoReflectMethod(t *testing.T) {
	cmd := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", "/dev/null", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "%.2000s", out)
	var callers []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "<ReflectMethod>") {
			callers = append(callers, line)
		}
	}
	assert.Check(t, len(callers) == 0, "berthd calls methods by name through reflection:\n%s", strings.Join(callers, "\n"))
	assert.Check(t, strings.Count(string(out), " -> ") > 1000, "no dependency graph in the linker's output: %.500s", out)
}
