package testimage

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

func TestReproducible(t *testing.T) {
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Fatalf("busybox-static is required: %v", err)
	}
	dir := t.TempDir()
	a, err := WriteDockerArchive(filepath.Join(dir, "a.tar"), Options{Tag: "busybox:latest"})
	assert.NilError(t, err)
	b, err := WriteDockerArchive(filepath.Join(dir, "b.tar"), Options{Tag: "busybox:latest"})
	assert.NilError(t, err)
	assert.Equal(t, a.ImageID, b.ImageID)
	ab, _ := os.ReadFile(filepath.Join(dir, "a.tar"))
	bb, _ := os.ReadFile(filepath.Join(dir, "b.tar"))
	assert.Equal(t, sha256.Sum256(ab), sha256.Sum256(bb))

	c, err := WriteDockerArchive(filepath.Join(dir, "c.tar"), Options{Tag: "vol:latest", Volumes: []string{"/data"}, Files: map[string]string{"/data/seed": "x"}})
	assert.NilError(t, err)
	assert.Check(t, c.ImageID != a.ImageID)

	o, err := WriteOCIArchive(filepath.Join(dir, "o.tar"), "latest", Options{Tag: "busybox:latest"})
	assert.NilError(t, err)
	assert.Equal(t, o.ImageID, a.ImageID)
}
