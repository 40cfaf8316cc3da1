package runtime

import (
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func img(entrypoint, cmd []string, env ...string) *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Entrypoint: entrypoint, Cmd: cmd, Env: env, Labels: map[string]string{"a": "image", "b": "image"}, WorkingDir: "/srv", StopSignal: "SIGQUIT"}}
}

func TestMergeImageConfigCommand(t *testing.T) {
	cases := []struct {
		name           string
		req            container.Config
		image          *dockerspec.DockerOCIImageConfig
		wantPath       string
		wantArgs       []string
		wantErrContain string
	}{
		{"image cmd", container.Config{}, img(nil, []string{"sh"}), "sh", []string{}, ""},
		{"user cmd replaces image cmd", container.Config{Cmd: []string{"echo", "hi"}}, img(nil, []string{"sh"}), "echo", []string{"hi"}, ""},
		{"image entrypoint + user cmd", container.Config{Cmd: []string{"-c", "x"}}, img([]string{"sh"}, []string{"-l"}), "sh", []string{"-c", "x"}, ""},
		{"user entrypoint drops image cmd", container.Config{Entrypoint: []string{"env"}}, img([]string{"sh"}, []string{"-l"}), "env", []string{}, ""},
		{"empty entrypoint clears", container.Config{Entrypoint: []string{""}, Cmd: []string{"true"}}, img([]string{"sh"}, nil), "true", []string{}, ""},
		{"nothing", container.Config{}, img(nil, nil), "", nil, "no command specified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.req
			mergeImageConfig(&cfg, tc.image)
			path, args, err := entrypointAndArgs(&cfg)
			if tc.wantErrContain != "" {
				assert.ErrorContains(t, err, tc.wantErrContain)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, path, tc.wantPath)
			assert.DeepEqual(t, args, tc.wantArgs)
		})
	}
}

func TestMergeImageConfigFields(t *testing.T) {
	cfg := container.Config{Env: []string{"A=1", "PATH=/x"}, Labels: map[string]string{"b": "user"}}
	mergeImageConfig(&cfg, img(nil, []string{"sh"}, "PATH=/bin", "B=2"))
	assert.Check(t, is.DeepEqual(cfg.Env, []string{"PATH=/x", "B=2", "A=1"}))
	assert.Check(t, is.DeepEqual(cfg.Labels, map[string]string{"a": "image", "b": "user"}))
	assert.Equal(t, cfg.WorkingDir, "/srv")
	assert.Equal(t, cfg.StopSignal, "SIGQUIT")
}

func TestProcessEnv(t *testing.T) {
	env := processEnv(&container.Config{Hostname: "abc", Env: []string{"A=1"}, Tty: true})
	assert.Check(t, is.DeepEqual(env, []string{defaultPath, "HOSTNAME=abc", "TERM=xterm", "A=1"}))
	env = processEnv(&container.Config{Hostname: "abc", Env: []string{"PATH=/bin", "HOSTNAME=mine"}})
	assert.Check(t, is.DeepEqual(env, []string{"HOSTNAME=mine", "PATH=/bin"}))
}
