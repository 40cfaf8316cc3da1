package oci

import (
	"testing"
	"time"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

func testImage() *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{
			User:         "app",
			ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
			Env:          []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
			Entrypoint:   []string{"/entry.sh"},
			Cmd:          []string{"serve", "--port=80"},
			Volumes:      map[string]struct{}{"/data": {}},
			WorkingDir:   "/app",
			Labels:       map[string]string{"maintainer": "image", "version": "1"},
			StopSignal:   "SIGQUIT",
		},
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{
			Healthcheck: &dockerspec.HealthcheckConfig{
				Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3,
			},
		},
	}
}

func TestMergeImageConfig(t *testing.T) {
	tests := []struct {
		name  string
		req   container.Config
		check func(t *testing.T, c *container.Config)
	}{
		{
			name: "empty request takes the image's config",
			check: func(t *testing.T, c *container.Config) {
				assert.Equal(t, c.User, "app")
				assert.DeepEqual(t, c.Entrypoint, []string{"/entry.sh"})
				assert.DeepEqual(t, c.Cmd, []string{"serve", "--port=80"})
				assert.DeepEqual(t, c.Env, []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"})
				assert.Equal(t, c.WorkingDir, "/app")
				assert.Equal(t, c.StopSignal, "SIGQUIT")
				assert.DeepEqual(t, c.Labels, map[string]string{"maintainer": "image", "version": "1"})
				assert.DeepEqual(t, c.Volumes, map[string]struct{}{"/data": {}})
				assert.DeepEqual(t, c.ExposedPorts, network.PortSet{
					network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {},
				})
				assert.DeepEqual(t, c.Healthcheck, &container.HealthConfig{
					Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3,
				})
			},
		},
		{
			name: "request values win",
			req: container.Config{
				User:         "root",
				Env:          []string{"LANG=fr_FR.UTF-8", "A=1"},
				WorkingDir:   "/srv",
				StopSignal:   "SIGTERM",
				Labels:       map[string]string{"version": "2"},
				Volumes:      map[string]struct{}{"/cache": {}},
				ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}},
				Healthcheck:  &container.HealthConfig{Interval: 5 * time.Second, Retries: 1},
			},
			check: func(t *testing.T, c *container.Config) {
				assert.Equal(t, c.User, "root")
				assert.DeepEqual(t, c.Env, []string{"LANG=fr_FR.UTF-8", "A=1", "PATH=/usr/bin:/bin"})
				assert.Equal(t, c.WorkingDir, "/srv")
				assert.Equal(t, c.StopSignal, "SIGTERM")
				assert.DeepEqual(t, c.Labels, map[string]string{"maintainer": "image", "version": "2"})
				assert.DeepEqual(t, c.Volumes, map[string]struct{}{"/data": {}, "/cache": {}})
				assert.Equal(t, len(c.ExposedPorts), 3)
				assert.DeepEqual(t, c.Healthcheck, &container.HealthConfig{
					Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 1,
				})
			},
		},
		{
			name: "cmd only: runs under the image's entrypoint",
			req:  container.Config{Cmd: []string{"migrate"}},
			check: func(t *testing.T, c *container.Config) {
				assert.DeepEqual(t, c.Entrypoint, []string{"/entry.sh"})
				assert.DeepEqual(t, c.Cmd, []string{"migrate"})
			},
		},
		{
			name: "entrypoint override drops the image's cmd",
			req:  container.Config{Entrypoint: []string{"/bin/sh"}},
			check: func(t *testing.T, c *container.Config) {
				assert.DeepEqual(t, c.Entrypoint, []string{"/bin/sh"})
				assert.Assert(t, c.Cmd == nil)
			},
		},
		{
			name: "empty entrypoint clears the image's",
			req:  container.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}},
			check: func(t *testing.T, c *container.Config) {
				assert.Assert(t, c.Entrypoint == nil)
				assert.DeepEqual(t, c.Cmd, []string{"ls"})
			},
		},
		{
			name: "healthcheck NONE in the request stays",
			req:  container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}},
			check: func(t *testing.T, c *container.Config) {
				assert.DeepEqual(t, c.Healthcheck.Test, []string{"NONE"})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := testImage()
			req := tc.req
			assert.NilError(t, MergeImageConfig(&req, img))
			tc.check(t, &req)
			// the image's config is not changed through the request
			req.Env = append(req.Env[:0], "X=1")
			req.Labels["new"] = "x"
			if req.Healthcheck != nil && len(req.Healthcheck.Test) > 0 {
				req.Healthcheck.Test[0] = "changed"
			}
			assert.DeepEqual(t, img, testImage())
		})
	}
}

func TestMergeImageConfigNoCommand(t *testing.T) {
	img := testImage()
	img.Entrypoint, img.Cmd = nil, nil
	err := MergeImageConfig(&container.Config{}, img)
	assert.Assert(t, errdefs.IsInvalidArgument(err))
	assert.ErrorContains(t, err, "no command specified")

	err = MergeImageConfig(&container.Config{Entrypoint: []string{""}}, testImage())
	assert.ErrorContains(t, err, "no command specified")

	assert.NilError(t, MergeImageConfig(&container.Config{Cmd: []string{"true"}}, nil))
}
