package registry

import (
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRegistryMirrorsConf: dockerd's registry-mirrors become docker.io's
// mirrors, in order, as containers/image reads them; http ones insecure.
func TestRegistryMirrorsConf(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, writeConfig(dir, []string{"http://127.0.0.1:5000", "https://mirror.example.com/"}))
	sys := &types.SystemContext{SystemRegistriesConfPath: filepath.Join(dir, "registries.conf"), SystemRegistriesConfDirPath: filepath.Join(dir, "registries.conf.d")}
	sysregistriesv2.InvalidateCache()
	reg, err := sysregistriesv2.FindRegistry(sys, "docker.io/library/busybox:latest")
	assert.NilError(t, err)
	assert.Assert(t, reg != nil)
	assert.Check(t, is.Len(reg.Mirrors, 2))
	assert.Check(t, is.Equal(reg.Mirrors[0].Location, "127.0.0.1:5000"))
	assert.Check(t, reg.Mirrors[0].Insecure)
	assert.Check(t, is.Equal(reg.Mirrors[1].Location, "mirror.example.com"))
	assert.Check(t, !reg.Mirrors[1].Insecure)
	other, err := sysregistriesv2.FindRegistry(sys, "quay.io/x/y:1")
	assert.NilError(t, err)
	assert.Check(t, other == nil, "only Docker Hub is mirrored")

	// no mirrors: a file that says nothing, rewritten (a daemon restarted
	// without mirrors forgets them)
	assert.NilError(t, writeConfig(dir, nil))
	sysregistriesv2.InvalidateCache()
	reg, err = sysregistriesv2.FindRegistry(sys, "docker.io/library/busybox:latest")
	assert.NilError(t, err)
	assert.Check(t, reg == nil)

	for m, want := range map[string]string{
		"ftp://x":                   `invalid mirror: unsupported scheme "ftp" in "ftp://x"`,
		"https://m.example.com/v2/": `invalid mirror: path, query, or fragment at end of the URI "https://m.example.com/v2/"`,
		"127.0.0.1:5000":            `invalid mirror: "127.0.0.1:5000" is not a valid URI`,
	} {
		assert.Check(t, is.ErrorContains(writeConfig(t.TempDir(), []string{m}), want), m)
	}
	_ = os.Remove
}
