package oci

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLinkEnvInProcess: the links' variables come after PATH, HOSTNAME and
// TERM and before the config's own, which override them, as in dockerd.
func TestLinkEnvInProcess(t *testing.T) {
	in := baseInput()
	in.Config.Tty = true
	in.Config.Env = []string{"DB_NAME=mine", "OWN=1"}
	in.LinkEnv = []string{"DB_PORT=tcp://10.0.0.2:6379", "DB_NAME=/web/db"}
	s, err := Generate(in)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(s.Process.Env, []string{
		"PATH=" + DefaultPathEnv, "HOSTNAME=" + testID[:12], "TERM=xterm",
		"DB_PORT=tcp://10.0.0.2:6379", "DB_NAME=mine", "OWN=1",
	}))
}

// TestCPURealtime: --cpu-rt-* are taken where the host has real-time group
// scheduling and go to the spec; refused where not, and when the runtime
// is above the period.
func TestCPURealtime(t *testing.T) {
	in := baseInput()
	in.Host.Cgroup.CPURealtime = true
	in.HostConfig.CPURealtimePeriod, in.HostConfig.CPURealtimeRuntime = 1000, 500
	s, err := Generate(in)
	assert.NilError(t, err)
	assert.Assert(t, s.Linux.Resources.CPU != nil)
	assert.Check(t, is.Equal(*s.Linux.Resources.CPU.RealtimePeriod, uint64(1000)))
	assert.Check(t, is.Equal(*s.Linux.Resources.CPU.RealtimeRuntime, int64(500)))

	in.HostConfig.CPURealtimeRuntime = 5000
	_, err = Generate(in)
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, is.ErrorContains(err, "cpu real-time runtime cannot be higher than cpu real-time period"))

	in = baseInput()
	in.HostConfig.CPURealtimeRuntime = 500
	_, err = Generate(in)
	assert.Check(t, is.ErrorContains(err, "Your kernel does not support CPU real-time scheduler"))
}

// TestDeviceRequestsRefused: no device driver, so every request fails at
// start with dockerd's words, unclassified (a 500), as in dockerd.
func TestDeviceRequestsRefused(t *testing.T) {
	for _, tc := range []struct {
		req  container.DeviceRequest
		want string
	}{
		{container.DeviceRequest{Count: -1, Capabilities: [][]string{{"gpu"}}}, `could not select device driver "" with capabilities: [[gpu]]`},
		{container.DeviceRequest{Driver: "cdi", DeviceIDs: []string{"vendor.com/gpu=0"}}, `could not select device driver "cdi" with capabilities: []`},
		{container.DeviceRequest{Driver: "nvidia", Capabilities: [][]string{{"gpu", "utility"}}}, `could not select device driver "nvidia" with capabilities: [[gpu utility]]`},
	} {
		in := baseInput()
		in.HostConfig.DeviceRequests = []container.DeviceRequest{tc.req}
		_, err := Generate(in)
		assert.Check(t, is.Error(err, tc.want))
		assert.Check(t, !errdefs.IsInvalidArgument(err) && !errdefs.IsNotFound(err))
	}
}

// TestJoinedIPCAndShm: a container joining another's IPC namespace gets
// that namespace and the /dev/shm the runtime mounts in place of its own.
func TestJoinedIPCAndShm(t *testing.T) {
	in := baseInput()
	in.HostConfig.IpcMode = "container:" + testID
	in.IPCNSPath = "/proc/42/ns/ipc"
	in.Mounts = []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/data/containers/x/mounts/shm", Options: []string{"rbind", "rprivate"}}}
	s, err := Generate(in)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(*namespace(s, specs.IPCNamespace), specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/42/ns/ipc"}))
	m := mountAt(s, "/dev/shm")
	assert.Assert(t, m != nil)
	assert.Check(t, is.Equal(m.Source, "/data/containers/x/mounts/shm"))
	assert.Check(t, is.Equal(m.Type, "bind"))
	n := 0
	for _, mm := range s.Mounts {
		if mm.Destination == "/dev/shm" {
			n++
		}
	}
	assert.Check(t, is.Equal(n, 1), "the default /dev/shm tmpfs is still there")
}
