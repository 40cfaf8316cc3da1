package imagecfg

import (
	"testing"
	"time"

	"github.com/berthd/berth/runtime/oci"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func ctrConfig() *container.Config {
	return &container.Config{
		Env:        []string{"KEEP=1", "A=0", "PATH=/usr/bin:/bin"},
		Cmd:        []string{"sh", "-c", "echo hello > /tmp/f"},
		WorkingDir: "/tmp",
		Labels:     map[string]string{"ctr": "1"},
	}
}

// The result dockerd 20.10 gave for the same commit (docker commit --change
// ... on a busybox container), field for field.
func TestApplyOnTheContainersConfig(t *testing.T) {
	ctr := ctrConfig()
	cfg := ctrConfig()
	err := Apply(cfg, []string{`ENV A=1 B="x y" C=$KEEP`, "EXPOSE 80", "LABEL x=y", "WORKDIR sub", "ENTRYPOINT echo hi"})
	assert.NilError(t, err)
	img := ImageConfig(ctr)
	oci.MergeImage(cfg, &img)
	assert.Check(t, is.DeepEqual(cfg.Env, []string{"KEEP=1", "A=1", "PATH=/usr/bin:/bin", "B=x y", "C=1"}))
	assert.Check(t, is.DeepEqual(cfg.ExposedPorts, network.PortSet{network.MustParsePort("80/tcp"): {}}))
	assert.Check(t, is.DeepEqual(cfg.Labels, map[string]string{"ctr": "1", "x": "y"}))
	assert.Check(t, is.Equal(cfg.WorkingDir, "/tmp/sub"))
	assert.Check(t, is.DeepEqual(cfg.Entrypoint, []string{"/bin/sh", "-c", "echo hi"}))
	assert.Check(t, is.Len(cfg.Cmd, 0), "an ENTRYPOINT without a CMD after it resets CMD")
}

func TestApplyEachInstruction(t *testing.T) {
	cfg := &container.Config{}
	err := Apply(cfg, []string{
		`CMD ["run", "it"]`, "USER nobody", "VOLUME /data /logs", "STOPSIGNAL SIGINT",
		"HEALTHCHECK --interval=5s --retries=2 CMD true", "ONBUILD RUN make", `SHELL ["/bin/bash", "-c"]`,
		"ENTRYPOINT [\"/entry\"]",
	})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(cfg.Cmd, []string{"run", "it"}), "a CMD before the ENTRYPOINT stays")
	assert.Check(t, is.DeepEqual(cfg.Entrypoint, []string{"/entry"}))
	assert.Check(t, is.Equal(cfg.User, "nobody"))
	assert.Check(t, is.DeepEqual(cfg.Volumes, map[string]struct{}{"/data": {}, "/logs": {}}))
	assert.Check(t, is.Equal(cfg.StopSignal, "SIGINT"))
	assert.Assert(t, cfg.Healthcheck != nil)
	assert.Check(t, is.DeepEqual(cfg.Healthcheck.Test, []string{"CMD-SHELL", "true"}))
	assert.Check(t, is.Equal(cfg.Healthcheck.Interval, 5*time.Second))
	assert.Check(t, is.Equal(cfg.Healthcheck.Retries, 2))
	assert.Check(t, is.DeepEqual(cfg.OnBuild, []string{"RUN make"}))
	assert.Check(t, is.DeepEqual(cfg.Shell, []string{"/bin/bash", "-c"}))

	// the shell form runs under the SHELL set before it
	assert.NilError(t, Apply(cfg, []string{"CMD echo $HOME"}))
	assert.Check(t, is.DeepEqual(cfg.Cmd, []string{"/bin/bash", "-c", "echo $HOME"}))
}

func TestApplyRefuses(t *testing.T) {
	for change, msg := range map[string]string{
		"RUN x":       "run is not a valid change command",
		"FOO x":       "foo is not a valid change command",
		"COPY a b":    "copy is not a valid change command",
		"EXPOSE x/yz": "invalid",
	} {
		err := Apply(&container.Config{}, []string{change})
		assert.Check(t, is.ErrorContains(err, msg), change)
		assert.Check(t, errdefs.IsInvalidArgument(err), change)
	}
}

func TestImageConfig(t *testing.T) {
	c := &container.Config{
		User: "u", Env: []string{"A=1"}, Cmd: []string{"c"}, Entrypoint: []string{"e"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "v"}, StopSignal: "SIGINT", Volumes: map[string]struct{}{"/v": {}},
		ExposedPorts: network.PortSet{network.MustParsePort("53/udp"): {}}, Shell: []string{"sh"}, OnBuild: []string{"RUN x"},
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}, Retries: 1},
		Hostname:    "not-in-an-image", Tty: true,
	}
	ic := ImageConfig(c)
	assert.Check(t, is.Equal(ic.User, "u"))
	assert.Check(t, is.DeepEqual(ic.Env, []string{"A=1"}))
	assert.Check(t, is.DeepEqual(ic.Cmd, []string{"c"}))
	assert.Check(t, is.DeepEqual(ic.Entrypoint, []string{"e"}))
	assert.Check(t, is.Equal(ic.WorkingDir, "/w"))
	assert.Check(t, is.DeepEqual(ic.Labels, map[string]string{"l": "v"}))
	assert.Check(t, is.Equal(ic.StopSignal, "SIGINT"))
	assert.Check(t, is.DeepEqual(ic.Volumes, map[string]struct{}{"/v": {}}))
	assert.Check(t, is.DeepEqual(ic.ExposedPorts, map[string]struct{}{"53/udp": {}}))
	assert.Check(t, is.DeepEqual(ic.Shell, []string{"sh"}))
	assert.Check(t, is.DeepEqual(ic.OnBuild, []string{"RUN x"}))
	assert.Check(t, is.DeepEqual(ic.Healthcheck.Test, []string{"NONE"}))
	assert.Check(t, is.Equal(ic.Healthcheck.Retries, 1))
}
