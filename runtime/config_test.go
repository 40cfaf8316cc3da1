package runtime

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestEntrypointAndArgs(t *testing.T) {
	path, args, err := entrypointAndArgs(&container.Config{Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo hi"}})
	assert.NilError(t, err)
	assert.Equal(t, path, "sh")
	assert.Check(t, is.DeepEqual(args, []string{"-c", "echo hi"}))
	_, _, err = entrypointAndArgs(&container.Config{})
	assert.ErrorContains(t, err, "no command specified")
}

func TestParseLinks(t *testing.T) {
	got := parseLinks([]string{"db", "cache:kv", "/web-db:/web/database", ":bad"})
	assert.Check(t, is.DeepEqual(got, map[string]string{"db": "db", "kv": "cache", "database": "web-db"}))
}
