package imagecfg

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp/cmpopts"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
)

// imageFields is the part of a container config an image keeps.
func imageFields(c *container.Config) *container.Config {
	return &container.Config{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir,
		Labels: c.Labels, StopSignal: c.StopSignal, ArgsEscaped: c.ArgsEscaped, Volumes: c.Volumes,
		OnBuild: c.OnBuild, Shell: c.Shell, ExposedPorts: c.ExposedPorts, Healthcheck: c.Healthcheck,
	}
}

// FuzzApply: docker commit --change and the builder's config instructions.
// Bad changes are ErrInvalidArgument; good ones leave a config whose
// working directory is absolute and clean, whose environment has each key
// once, that survives the trip through an image's config unchanged, and
// that is the same when the changes are applied again to the same start.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`ENV A=1 B="x y" C=$KEEP`, "EXPOSE 80 53/udp\nLABEL x=y", "WORKDIR sub\nWORKDIR ../..", "ENTRYPOINT echo hi\nCMD [\"a\"]",
		"USER app:staff", "VOLUME /data [\"/x\"]", "STOPSIGNAL SIGTERM", "HEALTHCHECK --interval=5s CMD true", "HEALTHCHECK NONE",
		"ONBUILD RUN make", "SHELL [\"/bin/bash\", \"-c\"]\nCMD echo", "# escape=`\nENV A=`$B", "RUN true", "FROM x",
		"EXPOSE 99999", "VOLUME \"\"", "ENV ${A:?boom}=1", "WORKDIR $PATH", "LABEL \"a b\"=c\\\nd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, changes string) {
		list := strings.Split(changes, "\n")
		cfg := ctrConfig()
		err := Apply(cfg, list)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", changes, err)
			return
		}
		if cfg.WorkingDir != "" {
			assert.Assert(t, path.IsAbs(cfg.WorkingDir) && path.Clean(cfg.WorkingDir) == cfg.WorkingDir, "WorkingDir %q", cfg.WorkingDir)
		}
		keys := map[string]bool{}
		for _, kv := range cfg.Env {
			k, _, _ := strings.Cut(kv, "=")
			assert.Assert(t, !keys[k], "%q twice in %q", k, cfg.Env)
			keys[k] = true
		}
		ic := ImageConfig(cfg)
		assert.DeepEqual(t, imageFields(ContainerConfig(ic)), imageFields(cfg), cmpopts.EquateEmpty())

		again := ctrConfig()
		assert.NilError(t, Apply(again, list))
		assert.DeepEqual(t, again, cfg)
	})
}

// FuzzImageConfig: an image's config (from a pulled or loaded image) as a
// container config and back: the trip loses nothing a second time.
func FuzzImageConfig(f *testing.F) {
	f.Add(`{"User":"app","Env":["A=1"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{},"x":{}},"Healthcheck":{"Test":["NONE"]}}`)
	f.Add(`{"WorkingDir":"/w","Labels":{"a":"b"},"Volumes":{"/v":{}},"OnBuild":["RUN x"],"Shell":["sh","-c"],"StopSignal":"9"}`)
	f.Add(`{"ExposedPorts":{"53/udp":{},"1-2/tcp":{},"65536/tcp":{},"80/sctp":{}}}`)
	f.Fuzz(func(t *testing.T, js string) {
		var ic dockerspec.DockerOCIImageConfig
		if json.Unmarshal([]byte(js), &ic) != nil {
			return
		}
		c := ContainerConfig(ic)
		c2 := ContainerConfig(ImageConfig(c))
		assert.DeepEqual(t, imageFields(c2), imageFields(c), cmpopts.EquateEmpty())
		for p := range c.ExposedPorts {
			found := false
			for k := range ic.ExposedPorts {
				q, err := network.ParsePort(k)
				found = found || (err == nil && q == p)
			}
			assert.Assert(t, found, "port %s from nowhere", p)
		}
	})
}
