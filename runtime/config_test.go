package runtime

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestProcessEnv(t *testing.T) {
	env := processEnv(&container.Config{Hostname: "abc", Env: []string{"A=1"}, Tty: true})
	assert.Check(t, is.DeepEqual(env, []string{defaultPath, "HOSTNAME=abc", "TERM=xterm", "A=1"}))
	env = processEnv(&container.Config{Hostname: "abc", Env: []string{"PATH=/bin", "HOSTNAME=mine"}})
	assert.Check(t, is.DeepEqual(env, []string{"HOSTNAME=mine", "PATH=/bin"}))
}

func TestEntrypointAndArgs(t *testing.T) {
	path, args, err := entrypointAndArgs(&container.Config{Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo hi"}})
	assert.NilError(t, err)
	assert.Equal(t, path, "sh")
	assert.Check(t, is.DeepEqual(args, []string{"-c", "echo hi"}))
	_, _, err = entrypointAndArgs(&container.Config{})
	assert.ErrorContains(t, err, "no command specified")
}
