package oci

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeDevices knows a few device nodes by host path.
type fakeDevices map[string][]specs.LinuxDevice

func (f fakeDevices) Device(p string) ([]specs.LinuxDevice, error) {
	if d, ok := f[p]; ok {
		return d, nil
	}
	return nil, os.ErrNotExist
}

func (f fakeDevices) All() ([]specs.LinuxDevice, error) {
	var all []specs.LinuxDevice
	for _, k := range []string{"/dev/null", "/dev/fuse", "/dev/sda"} {
		all = append(all, f[k]...)
	}
	return all, nil
}

func testHost() *Host {
	caps := slices.DeleteFunc(slices.Clone(capabilityNames), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	return &Host{
		NumCPU:       2,
		Rlimits:      map[string]Rlimit{"RLIMIT_NOFILE": {Soft: 1024, Hard: 20000}},
		Capabilities: caps,
		Sysctls:      map[string]bool{sysctlPingGroupRange: true, sysctlUnprivilegedPortStart: true},
		MaskedPaths:  []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"},
		Cgroup: CgroupFeatures{
			Memory: true, MemorySwap: true, MemoryReservation: true, MemorySwappiness: true,
			OomKillDisable: true, CPUShares: true, CPUCfs: true, Cpuset: true, Pids: true,
			BlkioWeight: true, Cpus: "0-1", Mems: "0",
		},
		Devices: fakeDevices{
			"/dev/null": {{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}},
			"/dev/fuse": {{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
			"/dev/sda":  {{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0}},
			"/dev/snd":  {{Path: "/dev/snd/pcm0", Type: "c", Major: 116, Minor: 2}, {Path: "/dev/snd/timer", Type: "c", Major: 116, Minor: 33}},
		},
	}
}

// baseInput is a container of the bridge network kind: its own network
// namespace at a path the runtime made.
func baseInput() Input {
	return Input{
		ID:          testID,
		Rootfs:      "/var/lib/berth/rootfs/x",
		Config:      &container.Config{Cmd: []string{"echo", "hi"}},
		HostConfig:  &container.HostConfig{},
		User:        User{AdditionalGids: []uint32{0}},
		NetNSPath:   "/run/berth/netns/x",
		CgroupsPath: "/berth-test/" + testID,
		Host:        testHost(),
	}
}

func mountAt(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func namespace(s *specs.Spec, t specs.LinuxNamespaceType) *specs.LinuxNamespace {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			return &s.Linux.Namespaces[i]
		}
	}
	return nil
}

func TestGenerateDefaults(t *testing.T) {
	s, err := Generate(baseInput())
	assert.NilError(t, err)

	assert.DeepEqual(t, s.Process.Args, []string{"echo", "hi"})
	assert.DeepEqual(t, s.Process.Env, []string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab"})
	assert.Equal(t, s.Process.Cwd, "/")
	assert.Equal(t, s.Process.Terminal, false)
	assert.Equal(t, s.Process.NoNewPrivileges, false)
	assert.Assert(t, is.Nil(s.Process.Rlimits), "no ulimit asked, none set (no 1048576 nofile default)")
	assert.DeepEqual(t, s.Process.Capabilities.Bounding, DefaultCapabilities())
	assert.DeepEqual(t, s.Process.Capabilities.Effective, DefaultCapabilities())
	assert.DeepEqual(t, s.Process.Capabilities.Permitted, DefaultCapabilities())
	assert.Assert(t, s.Process.Capabilities.Inheritable == nil && s.Process.Capabilities.Ambient == nil)
	assert.Equal(t, *s.Process.OOMScoreAdj, 0)

	assert.Equal(t, s.Hostname, "0123456789ab")
	assert.DeepEqual(t, *s.Root, specs.Root{Path: "/var/lib/berth/rootfs/x"})
	assert.Equal(t, s.Linux.CgroupsPath, "/berth-test/"+testID)
	assert.DeepEqual(t, s.Linux.Namespaces, []specs.LinuxNamespace{
		{Type: specs.MountNamespace},
		{Type: specs.NetworkNamespace, Path: "/run/berth/netns/x"},
		{Type: specs.UTSNamespace},
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
	})
	assert.DeepEqual(t, s.Linux.Sysctl, map[string]string{
		"net.ipv4.ping_group_range":           "0 2147483647",
		"net.ipv4.ip_unprivileged_port_start": "0",
	})
	assert.Assert(t, is.Contains(s.Linux.MaskedPaths, "/proc/kcore"))
	assert.Assert(t, is.Contains(s.Linux.MaskedPaths, "/sys/devices/system/cpu/cpu0/thermal_throttle"))
	assert.DeepEqual(t, s.Linux.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
	assert.DeepEqual(t, s.Linux.Resources.Devices, defaultDeviceRules())
	assert.Assert(t, s.Linux.Resources.Memory == nil && s.Linux.Resources.CPU == nil && s.Linux.Resources.Pids == nil)
	assert.Assert(t, s.Linux.Seccomp != nil)
	assert.Equal(t, s.Linux.Seccomp.DefaultAction, specs.ActErrno)

	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	assert.DeepEqual(t, dests, []string{"/proc", "/dev", "/sys", "/dev/pts", "/dev/mqueue", "/dev/shm", "/sys/fs/cgroup"})
	assert.DeepEqual(t, mountAt(s, "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"})
	assert.DeepEqual(t, mountAt(s, "/sys").Options, []string{"nosuid", "noexec", "nodev", "ro"})
}

func TestGenerateDoesNotChangeInput(t *testing.T) {
	in := baseInput()
	in.HostConfig.Memory = 64 << 20
	in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m"}
	_, err := Generate(in)
	assert.NilError(t, err)
	assert.Equal(t, in.HostConfig.ShmSize, int64(0))
	assert.Equal(t, in.HostConfig.MemorySwap, int64(0))
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(in *Input)
		check func(t *testing.T, s *specs.Spec)
	}{
		{
			name: "entrypoint, cmd, env, workdir, tty",
			edit: func(in *Input) {
				in.Config.Entrypoint = []string{"/entry.sh", "-x"}
				in.Config.Cmd = []string{"serve"}
				in.Config.Env = []string{"PATH=/custom", "A=1", "HOSTNAME=mine", "TERM"}
				in.Config.WorkingDir = "/srv/app/"
				in.Config.Tty = true
				in.HostConfig.ConsoleSize = [2]uint{24, 80}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Args, []string{"/entry.sh", "-x", "serve"})
				assert.DeepEqual(t, s.Process.Env, []string{"PATH=/custom", "HOSTNAME=mine", "A=1"})
				assert.Equal(t, s.Process.Cwd, "/srv/app")
				assert.Equal(t, s.Process.Terminal, true)
				assert.DeepEqual(t, s.Process.ConsoleSize, &specs.Box{Height: 24, Width: 80})
			},
		},
		{
			name: "empty entrypoint clears it",
			edit: func(in *Input) {
				in.Config.Entrypoint = []string{""}
				in.Config.Cmd = []string{"ls"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Args, []string{"ls"})
			},
		},
		{
			name: "user, umask, oom score",
			edit: func(in *Input) {
				in.User = User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 100}}
				in.HostConfig.Umask = ptr(uint32(0o027))
				in.HostConfig.OomScoreAdj = 500
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.User, specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 100}, Umask: ptr(uint32(0o027))})
				assert.Equal(t, *s.Process.OOMScoreAdj, 500)
			},
		},
		{
			name: "hostname and domainname",
			edit: func(in *Input) {
				in.Config.Hostname = "web"
				in.Config.Domainname = "example.org"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Equal(t, s.Hostname, "web")
				assert.Equal(t, s.Linux.Sysctl["kernel.domainname"], "example.org")
				assert.Assert(t, is.Contains(s.Process.Env, "HOSTNAME=web"))
			},
		},
		{
			name: "host network: no namespace, no network sysctls, no default hostname",
			edit: func(in *Input) {
				in.NetNSPath = ""
				in.HostConfig.NetworkMode = "host"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Assert(t, namespace(s, specs.NetworkNamespace) == nil)
				assert.Assert(t, is.Len(s.Linux.Sysctl, 0))
				assert.Equal(t, s.Hostname, "")
			},
		},
		{
			name: "network none with a prepared namespace joins it",
			edit: func(in *Input) { in.HostConfig.NetworkMode = "none" },
			check: func(t *testing.T, s *specs.Spec) {
				assert.Equal(t, namespace(s, specs.NetworkNamespace).Path, "/run/berth/netns/x")
			},
		},
		{
			name: "no network mode and no path: the host's namespace",
			edit: func(in *Input) { in.NetNSPath = "" },
			check: func(t *testing.T, s *specs.Spec) {
				assert.Assert(t, namespace(s, specs.NetworkNamespace) == nil)
			},
		},
		{
			name: "network none: a new empty namespace",
			edit: func(in *Input) {
				in.NetNSPath = ""
				in.HostConfig.NetworkMode = "none"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, namespace(s, specs.NetworkNamespace), &specs.LinuxNamespace{Type: specs.NetworkNamespace})
				assert.Equal(t, s.Hostname, "0123456789ab")
			},
		},
		{
			name: "pid, ipc and uts host, cgroupns private",
			edit: func(in *Input) {
				in.HostConfig.PidMode = "host"
				in.HostConfig.IpcMode = "host"
				in.HostConfig.UTSMode = "host"
				in.HostConfig.CgroupnsMode = "private"
				in.HostConfig.Init = ptr(true) // no init in the host's pid namespace
				in.InitPath = "/usr/bin/catatonit"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Assert(t, namespace(s, specs.PIDNamespace) == nil)
				assert.Assert(t, namespace(s, specs.IPCNamespace) == nil)
				assert.Assert(t, namespace(s, specs.UTSNamespace) == nil)
				assert.Assert(t, namespace(s, specs.CgroupNamespace) != nil)
				assert.Equal(t, s.Hostname, "")
				assert.DeepEqual(t, s.Process.Args, []string{"echo", "hi"})
				assert.DeepEqual(t, *mountAt(s, "/dev/shm"), specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
			},
		},
		{
			name: "ipc shareable, ipc none, joined pid and network",
			edit: func(in *Input) {
				in.HostConfig.IpcMode = "none"
				in.HostConfig.PidMode = "container:abc"
				in.PIDNSPath = "/proc/42/ns/pid"
				in.HostConfig.NetworkMode = "container:abc"
				in.NetNSPath = "/proc/42/ns/net"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, namespace(s, specs.IPCNamespace), &specs.LinuxNamespace{Type: specs.IPCNamespace})
				assert.Assert(t, mountAt(s, "/dev/shm") == nil)
				assert.Equal(t, namespace(s, specs.PIDNamespace).Path, "/proc/42/ns/pid")
				assert.Equal(t, namespace(s, specs.NetworkNamespace).Path, "/proc/42/ns/net")
				assert.Assert(t, is.Len(s.Linux.Sysctl, 0), "no default net sysctls in a joined namespace")
			},
		},
		{
			name: "cap add and drop, any case, with or without prefix",
			edit: func(in *Input) {
				in.HostConfig.CapAdd = []string{"net_admin", "CAP_SYS_PTRACE"}
				in.HostConfig.CapDrop = []string{"Mknod", "cap_net_raw"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				caps := s.Process.Capabilities.Bounding
				assert.Assert(t, is.Contains(caps, "CAP_NET_ADMIN"))
				assert.Assert(t, is.Contains(caps, "CAP_SYS_PTRACE"))
				assert.Assert(t, !slices.Contains(caps, "CAP_MKNOD"))
				assert.Assert(t, !slices.Contains(caps, "CAP_NET_RAW"))
				assert.Equal(t, len(caps), 14)
				// the seccomp profile follows the capabilities: kcmp needs CAP_SYS_PTRACE
				assert.Assert(t, seccompAllows(s, "kcmp"))
			},
		},
		{
			name: "cap add ALL gets what the engine holds",
			edit: func(in *Input) {
				in.HostConfig.CapAdd = []string{"ALL"}
				in.HostConfig.CapDrop = []string{"sys_admin"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				caps := s.Process.Capabilities.Bounding
				assert.Equal(t, len(caps), len(capabilityNames)-2)
				assert.Assert(t, !slices.Contains(caps, "CAP_SYS_RESOURCE"))
				assert.Assert(t, !slices.Contains(caps, "CAP_SYS_ADMIN"))
			},
		},
		{
			name: "cap drop ALL keeps only cap add",
			edit: func(in *Input) {
				in.HostConfig.CapDrop = []string{"ALL"}
				in.HostConfig.CapAdd = []string{"chown"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Capabilities.Bounding, []string{"CAP_CHOWN"})
				assert.Assert(t, !seccompAllows(s, "kcmp"))
			},
		},
		{
			name: "privileged",
			edit: func(in *Input) {
				in.HostConfig.Privileged = true
				in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Capabilities.Bounding, testHost().Capabilities)
				assert.Assert(t, s.Linux.Seccomp == nil)
				assert.Assert(t, s.Linux.MaskedPaths == nil && s.Linux.ReadonlyPaths == nil)
				assert.DeepEqual(t, mountAt(s, "/sys").Options, []string{"nosuid", "noexec", "nodev"})
				assert.DeepEqual(t, mountAt(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
				assert.DeepEqual(t, s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
				var paths []string
				for _, d := range s.Linux.Devices {
					paths = append(paths, d.Path)
				}
				assert.DeepEqual(t, paths, []string{"/dev/null", "/dev/fuse", "/dev/sda", "/dev/xvda"})
			},
		},
		{
			name: "privileged with explicit paths",
			edit: func(in *Input) {
				in.HostConfig.Privileged = true
				in.HostConfig.MaskedPaths = []string{"/proc/kcore"}
				in.HostConfig.ReadonlyPaths = []string{}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Linux.MaskedPaths, []string{"/proc/kcore"})
				assert.DeepEqual(t, s.Linux.ReadonlyPaths, []string{})
			},
		},
		{
			name: "security opts",
			edit: func(in *Input) {
				in.HostConfig.SecurityOpt = []string{"no-new-privileges:true", "seccomp=unconfined", "label=disable", "apparmor=unconfined", "writable-cgroups=true"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Equal(t, s.Process.NoNewPrivileges, true)
				assert.Assert(t, s.Linux.Seccomp == nil)
				assert.DeepEqual(t, mountAt(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
			},
		},
		{
			name: "custom seccomp profile",
			edit: func(in *Input) {
				in.HostConfig.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Equal(t, s.Linux.Seccomp.DefaultAction, specs.ActAllow)
				assert.DeepEqual(t, s.Linux.Seccomp.Syscalls[0].Names, []string{"chmod"})
			},
		},
		{
			name: "rlimits clamped to the host's hard limit",
			edit: func(in *Input) {
				in.HostConfig.Ulimits = []*container.Ulimit{
					{Name: "nofile", Soft: 65536, Hard: 65536},
					{Name: "nproc", Soft: 100, Hard: 200},
					{Name: "core", Soft: -1, Hard: -1},
					{Name: "nproc", Soft: 10, Hard: 20},
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Rlimits, []specs.POSIXRlimit{
					{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000},
					{Type: "RLIMIT_NPROC", Soft: 10, Hard: 20},
					{Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)},
				})
			},
		},
		{
			name: "memory, cpu, pids, blkio",
			edit: func(in *Input) {
				in.HostConfig.Resources = container.Resources{
					Memory:            64 << 20,
					MemoryReservation: 32 << 20,
					MemorySwappiness:  ptr(int64(10)),
					OomKillDisable:    ptr(true),
					NanoCPUs:          1_500_000_000,
					CPUShares:         512,
					CpusetCpus:        "0-1",
					CpusetMems:        "0",
					PidsLimit:         ptr(int64(100)),
					BlkioWeight:       300,
					BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{
						{Path: "/dev/sda", Rate: 1 << 20},
					},
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				assert.Equal(t, *r.Memory.Limit, int64(64<<20))
				assert.Equal(t, *r.Memory.Swap, int64(128<<20), "Docker's default: twice the memory")
				assert.Equal(t, *r.Memory.Reservation, int64(32<<20))
				assert.Equal(t, *r.Memory.Swappiness, uint64(10))
				assert.Equal(t, *r.Memory.DisableOOMKiller, true)
				assert.Equal(t, *r.CPU.Quota, int64(150000))
				assert.Equal(t, *r.CPU.Period, uint64(100000))
				assert.Equal(t, *r.CPU.Shares, uint64(512))
				assert.Equal(t, r.CPU.Cpus, "0-1")
				assert.Equal(t, r.CPU.Mems, "0")
				assert.Equal(t, *r.Pids.Limit, int64(100))
				assert.Equal(t, *r.BlockIO.Weight, uint16(300))
				assert.Equal(t, len(r.BlockIO.ThrottleReadBpsDevice), 1)
				assert.Equal(t, r.BlockIO.ThrottleReadBpsDevice[0].Major, int64(8))
				assert.Equal(t, r.BlockIO.ThrottleReadBpsDevice[0].Rate, uint64(1<<20))
			},
		},
		{
			name: "unlimited swap, cpu period and quota, pids 0",
			edit: func(in *Input) {
				in.HostConfig.Resources = container.Resources{
					Memory: 64 << 20, MemorySwap: -1, CPUPeriod: 50000, CPUQuota: 25000, PidsLimit: ptr(int64(0)),
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				assert.Equal(t, *r.Memory.Swap, int64(-1))
				assert.Equal(t, *r.CPU.Period, uint64(50000))
				assert.Equal(t, *r.CPU.Quota, int64(25000))
				assert.Assert(t, r.Pids == nil)
			},
		},
		{
			name: "resources the host cannot apply are dropped",
			edit: func(in *Input) {
				in.Host.Cgroup.MemorySwap = false
				in.Host.Cgroup.BlkioWeight = false
				in.HostConfig.Memory = 64 << 20
				in.HostConfig.MemorySwap = 128 << 20
				in.HostConfig.BlkioWeight = 300
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.Equal(t, *s.Linux.Resources.Memory.Swap, int64(-1))
				assert.Assert(t, s.Linux.Resources.BlockIO == nil)
			},
		},
		{
			name: "devices and cgroup rules",
			edit: func(in *Input) {
				in.HostConfig.Devices = []container.DeviceMapping{
					{PathOnHost: "/dev/fuse", CgroupPermissions: "rw"},
					{PathOnHost: "/dev/snd", PathInContainer: "/dev/sound", CgroupPermissions: "rwm"},
				}
				in.HostConfig.DeviceCgroupRules = []string{"c 42:* rmw", "b *:* m"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				var paths []string
				for _, d := range s.Linux.Devices {
					paths = append(paths, d.Path)
				}
				assert.DeepEqual(t, paths, []string{"/dev/fuse", "/dev/sound/pcm0", "/dev/sound/timer"})
				rules := s.Linux.Resources.Devices
				n := len(defaultDeviceRules())
				assert.DeepEqual(t, rules[:n], defaultDeviceRules())
				assert.DeepEqual(t, rules[n:], []specs.LinuxDeviceCgroup{
					{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "rw"},
					{Allow: true, Type: "c", Major: ptr(int64(116)), Minor: ptr(int64(2)), Access: "rwm"},
					{Allow: true, Type: "c", Major: ptr(int64(116)), Minor: ptr(int64(33)), Access: "rwm"},
					{Allow: true, Type: "c", Major: ptr(int64(42)), Minor: ptr(int64(-1)), Access: "rmw"},
					{Allow: true, Type: "b", Major: ptr(int64(-1)), Minor: ptr(int64(-1)), Access: "m"},
				})
			},
		},
		{
			name: "sysctls",
			edit: func(in *Input) {
				in.HostConfig.Sysctls = map[string]string{
					"net.ipv4.ip_forward":       "1",
					"net.ipv4.ping_group_range": "0 0",
					"kernel.shmmax":             "1000000",
					"fs.mqueue.msg_max":         "20",
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Linux.Sysctl, map[string]string{
					"net.ipv4.ip_forward":                 "1",
					"net.ipv4.ping_group_range":           "0 0",
					"net.ipv4.ip_unprivileged_port_start": "0",
					"kernel.shmmax":                       "1000000",
					"fs.mqueue.msg_max":                   "20",
				})
			},
		},
		{
			name: "mounts: tmpfs, runtime mounts override defaults, parents first, read-only rootfs",
			edit: func(in *Input) {
				in.HostConfig.ReadonlyRootfs = true
				in.HostConfig.ShmSize = 1 << 20
				in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m,mode=1777,exec", "/tmp": ""}
				in.Mounts = []specs.Mount{
					{Destination: "/data/sub", Type: "bind", Source: "/vol/b", Options: []string{"rbind"}},
					{Destination: "/etc/hosts", Type: "bind", Source: "/run/berth/x/hosts", Options: []string{"rbind", "rprivate"}},
					{Destination: "/data", Type: "bind", Source: "/vol/a", Options: []string{"rbind"}},
					{Destination: "/dev/shm/", Type: "bind", Source: "/run/berth/x/shm", Options: []string{"rbind"}},
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				var dests []string
				for _, m := range s.Mounts {
					dests = append(dests, m.Destination)
				}
				assert.DeepEqual(t, dests, []string{
					"/proc", "/dev", "/sys", "/run", "/tmp", "/data",
					"/dev/pts", "/dev/mqueue", "/data/sub", "/etc/hosts", "/dev/shm", "/sys/fs/cgroup",
				})
				assert.Equal(t, s.Root.Readonly, true)
				assert.DeepEqual(t, mountAt(s, "/run").Options, []string{"nosuid", "nodev", "rprivate", "size=1m", "mode=1777", "exec"})
				assert.DeepEqual(t, *mountAt(s, "/tmp"), specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate"}})
				assert.Equal(t, mountAt(s, "/dev/shm").Source, "/run/berth/x/shm")
				assert.DeepEqual(t, mountAt(s, "/etc/hosts").Options, []string{"rbind", "rprivate"})    // runtime mounts keep their options
				assert.DeepEqual(t, mountAt(s, "/proc").Options, []string{"nosuid", "noexec", "nodev"}) // no ro on /proc
			},
		},
		{
			name: "a /dev mount replaces every default under /dev",
			edit: func(in *Input) {
				in.Mounts = []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				var dests []string
				for _, m := range s.Mounts {
					dests = append(dests, m.Destination)
				}
				assert.DeepEqual(t, dests, []string{"/proc", "/sys", "/dev", "/sys/fs/cgroup"})
			},
		},
		{
			name: "init",
			edit: func(in *Input) {
				in.HostConfig.Init = ptr(true)
				in.InitPath = "/usr/bin/catatonit"
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Process.Args, []string{"/sbin/docker-init", "--", "echo", "hi"})
				assert.DeepEqual(t, *mountAt(s, "/sbin/docker-init"), specs.Mount{Destination: "/sbin/docker-init", Type: "bind", Source: "/usr/bin/catatonit", Options: []string{"bind", "ro"}})
			},
		},
		{
			name: "annotations",
			edit: func(in *Input) {
				in.HostConfig.Annotations = map[string]string{"a": "b"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				assert.DeepEqual(t, s.Annotations, map[string]string{"a": "b"})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			tc.edit(&in)
			s, err := Generate(in)
			assert.NilError(t, err)
			tc.check(t, s)
		})
	}
}

// seccompAllows says whether the profile has an unconditional allow rule
// for the syscall.
func seccompAllows(s *specs.Spec, name string) bool {
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
			return true
		}
	}
	return false
}

func TestGenerateInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(in *Input)
		want string
	}{
		{"no command", func(in *Input) { in.Config.Cmd = nil }, "no command specified"},
		{"empty entrypoint, no cmd", func(in *Input) { in.Config.Cmd, in.Config.Entrypoint = nil, []string{""} }, "no command specified"},
		{"relative workdir", func(in *Input) { in.Config.WorkingDir = "app" }, "the working directory 'app' is invalid, it needs to be an absolute path"},
		{"empty env name", func(in *Input) { in.Config.Env = []string{"=x"} }, "invalid environment variable: =x"},
		{"memory too small", func(in *Input) { in.HostConfig.Memory = 1 << 20 }, "Minimum memory limit allowed is 6MB"},
		{"negative memory", func(in *Input) { in.HostConfig.Memory = -5 }, "invalid memory value -5"},
		{"swap below memory", func(in *Input) { in.HostConfig.Memory, in.HostConfig.MemorySwap = 64<<20, 32<<20 }, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{"swap without memory", func(in *Input) { in.HostConfig.MemorySwap = 64 << 20 }, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"reservation above limit", func(in *Input) { in.HostConfig.Memory, in.HostConfig.MemoryReservation = 64<<20, 128<<20 }, "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{"swappiness", func(in *Input) { in.HostConfig.MemorySwappiness = ptr(int64(101)) }, "Invalid value: 101, valid memory swappiness range is 0-100"},
		{"nano cpus and period", func(in *Input) { in.HostConfig.NanoCPUs, in.HostConfig.CPUPeriod = 1e9, 100000 }, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"nano cpus and quota", func(in *Input) { in.HostConfig.NanoCPUs, in.HostConfig.CPUQuota = 1e9, 100000 }, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{"too many cpus", func(in *Input) { in.HostConfig.NanoCPUs = 3e9 }, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{"negative shares", func(in *Input) { in.HostConfig.CPUShares = -1 }, "invalid CPU shares (-1): value must be a positive integer"},
		{"cfs period", func(in *Input) { in.HostConfig.CPUPeriod = 10 }, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{"cfs quota", func(in *Input) { in.HostConfig.CPUQuota = 10 }, "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{"cpuset unavailable", func(in *Input) { in.HostConfig.CpusetCpus = "0-5" }, "Requested CPUs are not available - requested 0-5, available: 0-1"},
		{"cpuset malformed", func(in *Input) { in.HostConfig.CpusetCpus = "a" }, "Invalid value a for cpuset cpus"},
		{"blkio weight", func(in *Input) { in.HostConfig.BlkioWeight = 5 }, "Range of blkio weight is from 10 to 1000"},
		{"shm size", func(in *Input) { in.HostConfig.ShmSize = -1 }, "SHM size can not be less than 0"},
		{"oom score", func(in *Input) { in.HostConfig.OomScoreAdj = 1001 }, "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{"unknown capability", func(in *Input) { in.HostConfig.CapAdd = []string{"foo"} }, `unknown capability: "CAP_FOO"`},
		{"capability the engine lacks", func(in *Input) { in.HostConfig.CapAdd = []string{"sys_resource"} }, `capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`},
		{"unknown ulimit", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "foo", Soft: 1, Hard: 1}} }, "invalid ulimit type: foo"},
		{"ulimit soft above hard", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 2, Hard: 1}} }, "ulimit soft limit must be less than or equal to hard limit: 2 > 1"},
		{"tmpfs option", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m,bogus"} }, `invalid tmpfs option "bogus"`},
		{"tmpfs size", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/run": "size=lots"} }, `invalid tmpfs option "size": bad value "lots"`},
		{"tmpfs at /", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/": ""} }, "invalid specification: destination can't be '/'"},
		{"tmpfs relative", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"run": ""} }, "invalid mount path: 'run' mount path must be absolute"},
		{"tmpfs where a volume is", func(in *Input) {
			in.HostConfig.Tmpfs = map[string]string{"/data": ""}
			in.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/vol"}}
		}, "Duplicate mount point: /data"},
		{"net sysctl on the host network", func(in *Input) {
			in.HostConfig.NetworkMode, in.NetNSPath = "host", ""
			in.HostConfig.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
		}, `sysctl "net.core.somaxconn" is not allowed in the hosts network namespace`},
		{"ipc sysctl in the host ipc", func(in *Input) {
			in.HostConfig.IpcMode = "host"
			in.HostConfig.Sysctls = map[string]string{"kernel.shmmax": "1"}
		}, `sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace`},
		{"host-wide sysctl", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"vm.swappiness": "1"} }, `sysctl "vm.swappiness" is not allowed`},
		{"security opt", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo"} }, `invalid --security-opt 1: "foo"`},
		{"security opt key", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo=bar"} }, `invalid --security-opt 2: "foo=bar"`},
		{"bad seccomp profile", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp={"} }, "Decoding seccomp profile failed"},
		{"ipc mode", func(in *Input) { in.HostConfig.IpcMode = "bogus" }, "invalid IPC mode: bogus"},
		{"pid mode", func(in *Input) { in.HostConfig.PidMode = "bogus" }, "invalid PID mode: bogus"},
		{"pid container without path", func(in *Input) { in.HostConfig.PidMode = "container:abc" }, "failed to join PID namespace"},
		{"network container without path", func(in *Input) { in.HostConfig.NetworkMode, in.NetNSPath = "container:abc", "" }, "cannot join network of container abc"},
		{"bridge without a namespace", func(in *Input) { in.HostConfig.NetworkMode, in.NetNSPath = "bridge", "" }, `network mode "bridge" needs a network namespace to join`},
		{"user namespace", func(in *Input) { in.HostConfig.UsernsMode = "private" }, "user namespaces are not supported"},
		{"init without binary", func(in *Input) { in.HostConfig.Init = ptr(true) }, "no init binary is configured"},
		{"device rule", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"c 1:2"} }, "invalid device cgroup rule format: 'c 1:2'"},
		{"missing device", func(in *Input) { in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/nope"}} }, `error gathering device information while adding custom device "/dev/nope"`},
		{"device mode", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rx"}}
		}, "invalid device mode: rx"},
		{"no config", func(in *Input) { in.Config = nil }, "container config is required"},
		{"no rootfs", func(in *Input) { in.Rootfs = "" }, "container rootfs is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			tc.edit(&in)
			_, err := Generate(in)
			assert.Assert(t, errdefs.IsInvalidArgument(err), "got %v", err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidateWarnsAndFills(t *testing.T) {
	h := testHost()
	h.Cgroup.MemorySwappiness = false
	h.Cgroup.Pids = false
	hc := &container.HostConfig{Resources: container.Resources{
		Memory:           64 << 20,
		MemorySwappiness: ptr(int64(10)),
		PidsLimit:        ptr(int64(10)),
		OomKillDisable:   ptr(true),
	}}
	warnings, err := Validate(&container.Config{}, hc, h)
	assert.NilError(t, err)
	assert.Equal(t, hc.ShmSize, int64(64<<20))
	assert.Equal(t, hc.MemorySwap, int64(128<<20))
	assert.Assert(t, hc.MemorySwappiness == nil && hc.PidsLimit == nil)
	assert.DeepEqual(t, warnings, []string{
		"Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
		"Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
	})

	_, err = Validate(&container.Config{}, &container.HostConfig{Resources: container.Resources{OomKillDisable: ptr(true)}}, h)
	assert.NilError(t, err)
}

func TestParseTmpfsOptions(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		{in: "size=1m,mode=1777", want: []string{"noexec", "nosuid", "nodev", "rprivate", "size=1m", "mode=1777"}},
		{in: "exec,suid", want: []string{"nodev", "rprivate", "exec", "suid"}},
		{in: "size=1m,size=2m", want: []string{"noexec", "nosuid", "nodev", "rprivate", "size=2m"}},
		{in: "ro,rw", want: []string{"noexec", "nosuid", "nodev", "rprivate", "rw"}},
		{in: "shared", want: []string{"noexec", "nosuid", "nodev", "shared"}},
		{in: "defaults,noatime,size=50%,nr_inodes=1k,uid=1000,gid=1000,huge=within_size,mpol=bind:0", want: []string{"noexec", "nosuid", "nodev", "rprivate", "noatime", "size=50%", "nr_inodes=1k", "uid=1000", "gid=1000", "huge=within_size", "mpol=bind:0"}},
		{in: "size=1m,", want: []string{"noexec", "nosuid", "nodev", "rprivate", "size=1m"}},
		{in: "bind", wantErr: `invalid tmpfs option "bind"`},
		{in: "size=", wantErr: `invalid tmpfs option "size": bad value ""`},
		{in: "size=1mb", wantErr: "bad value"},
		{in: "size=101%", wantErr: "bad value"},
		{in: "mode=999", wantErr: "bad value"},
		{in: "mode=17777", wantErr: "bad value"},
		{in: "uid=-1", wantErr: "bad value"},
		{in: "huge=sometimes", wantErr: "bad value"},
		{in: "foo=bar", wantErr: `invalid tmpfs option "foo"`},
		{in: "size=1m mode=1", wantErr: "bad value"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTmpfsOptions(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Assert(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestProbeHost(t *testing.T) {
	h := ProbeHost()
	assert.Assert(t, h.NumCPU > 0)
	assert.Assert(t, len(h.Capabilities) > 0)
	assert.Assert(t, h.Rlimits["RLIMIT_NOFILE"].Hard > 0)
	assert.Assert(t, h == ProbeHost(), "probed once")
	// every capability the engine holds is one the kernel knows
	for _, c := range h.Capabilities {
		assert.Assert(t, slices.Contains(capabilityNames, c), c)
	}
	devs, err := h.Devices.Device("/dev/null")
	assert.NilError(t, err)
	assert.DeepEqual(t, []int64{devs[0].Major, devs[0].Minor}, []int64{1, 3})
	assert.Equal(t, devs[0].Path, "/dev/null")
	_, err = h.Devices.Device("/nonexistent")
	assert.Assert(t, errors.Is(err, os.ErrNotExist), "got %v", err)
	all, err := h.Devices.All()
	assert.NilError(t, err)
	assert.Assert(t, slices.ContainsFunc(all, func(d specs.LinuxDevice) bool { return d.Path == "/dev/zero" }))
	assert.Assert(t, !slices.ContainsFunc(all, func(d specs.LinuxDevice) bool { return strings.HasPrefix(d.Path, "/dev/pts/") }))
}

func BenchmarkGenerate(b *testing.B) {
	in := baseInput()
	in.HostConfig.Memory = 64 << 20
	in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m"}
	for b.Loop() {
		if _, err := Generate(in); err != nil {
			b.Fatal(err)
		}
	}
}
