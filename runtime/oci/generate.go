package oci

import (
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPathEnv is the PATH a container gets unless its config sets one.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitPath is where the init binary (HostConfig.Init) appears in a container.
const InitPath = "/sbin/docker-init"

// Input is everything Generate needs to know about one container.
type Input struct {
	ID     string // 64-hex container id
	Rootfs string // mounted rootfs path on the host
	// Config is already merged with the image config (see MergeImageConfig).
	Config     *container.Config
	HostConfig *container.HostConfig // nil means all defaults
	User       User                  // from ResolveUser
	// Mounts are volumes, binds and the generated /etc/hosts, /etc/hostname
	// and /etc/resolv.conf. They replace default mounts at the same place.
	Mounts []specs.Mount
	// NetNSPath is the network namespace to join. "" is right only for
	// NetworkMode "host" (the engine's namespace), "none" (runc makes a new,
	// empty one) and "" (treated as host); any other mode without a path is
	// an error, so that a container never lands in the host's namespace by
	// mistake.
	NetNSPath string
	// IPCNSPath and PIDNSPath are the namespaces to join for IpcMode and
	// PidMode "container:<id>" (e.g. /proc/<pid>/ns/ipc of that container).
	IPCNSPath, PIDNSPath string
	// LinkEnv are the variables of the container's legacy links (--link on
	// the default bridge); the config's own variables override them.
	LinkEnv []string
	// CgroupsPath is the container's cgroup, e.g. "/berth-<instance>/<id>".
	CgroupsPath string
	// InitPath is the host path of tini/catatonit, for HostConfig.Init.
	InitPath string
	// Host is what the host allows; nil means ProbeHost().
	Host *Host
}

// User is the resolved identity of the container's process.
type User struct {
	UID, GID uint32
	// AdditionalGids holds, like Docker, the primary group, the user's
	// supplementary groups and HostConfig.GroupAdd.
	AdditionalGids []uint32
	Home           string
}

// specOpt changes a spec being generated, like containerd's oci.SpecOpts.
type specOpt func(*specs.Spec) error

// Validate checks a create request as Docker does at create time, so bad
// input fails early with Docker's words (ErrInvalidArgument). It fills hc
// with Docker's create-time defaults (ShmSize 64 MiB, MemorySwap twice
// Memory), drops resource settings the host's cgroups cannot apply, and
// says so in warnings, which belong in the create response. A nil host means
// ProbeHost().
func Validate(cfg *container.Config, hc *container.HostConfig, host *Host) (warnings []string, _ error) {
	if host == nil {
		host = ProbeHost()
	}
	if cfg != nil && cfg.WorkingDir != "" && !path.IsAbs(cfg.WorkingDir) {
		return nil, invalid("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if cfg != nil {
		for _, e := range cfg.Env {
			if k, _, _ := strings.Cut(e, "="); k == "" {
				return nil, invalid("invalid environment variable: %s", e)
			}
		}
	}
	if hc == nil {
		return nil, nil
	}
	if hc.ShmSize < 0 {
		return nil, invalid("SHM size can not be less than 0")
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = hc.Memory * 2
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, invalid("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	w, err := checkResources(&hc.Resources, host)
	if err != nil {
		return w, err
	}
	for dest, opts := range hc.Tmpfs {
		if _, err := mountDestination(dest); err != nil {
			return w, err
		}
		if _, err := ParseTmpfsOptions(opts); err != nil {
			return w, err
		}
	}
	if _, err := parseSecurityOpts(hc.SecurityOpt); err != nil {
		return w, err
	}
	if !hc.IpcMode.Valid() {
		return w, invalid("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return w, invalid("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return w, invalid("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return w, invalid("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	for _, ul := range hc.Ulimits {
		if _, err := rlimits([]*container.Ulimit{ul}, nil); err != nil {
			return w, err
		}
	}
	if _, err := capabilities(hc, host.Capabilities); err != nil {
		return w, err
	}
	for _, rule := range hc.DeviceCgroupRules {
		if _, err := parseDeviceCgroupRule(rule); err != nil {
			return w, err
		}
	}
	return w, nil
}

// Generate builds the OCI runtime spec of a container: Docker's default spec
// changed by the container's settings. Bad input is ErrInvalidArgument with
// Docker's words. Generate reads nothing from the host but through in.Host
// (and Docker's seccomp profile, which looks at the kernel version).
func Generate(in Input) (*specs.Spec, error) {
	if in.Config == nil {
		return nil, invalid("container config is required")
	}
	if in.Rootfs == "" {
		return nil, invalid("container rootfs is required")
	}
	host := in.Host
	if host == nil {
		host = ProbeHost()
	}
	devices := host.Devices
	if devices == nil {
		devices = hostDevices{}
	}
	cfg := in.Config
	hc := &container.HostConfig{}
	if in.HostConfig != nil {
		hc = cloneHostConfig(in.HostConfig)
	}
	if _, err := Validate(cfg, hc, host); err != nil {
		return nil, err
	}
	args, err := processArgs(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkDeviceRequests(hc.DeviceRequests); err != nil {
		return nil, err
	}
	ns := namespacePaths{network: in.NetNSPath, ipc: in.IPCNSPath, pid: in.PIDNSPath}
	if err := checkNamespaceModes(hc, ns); err != nil {
		return nil, err
	}
	if err := checkSysctls(hc, in.NetNSPath); err != nil {
		return nil, err
	}
	so, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(hc, host.Capabilities)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(hc.Ulimits, host.Rlimits)
	if err != nil {
		return nil, err
	}
	user, err := userMounts(hc.Tmpfs, in.Mounts)
	if err != nil {
		return nil, err
	}
	useInit := hc.Init != nil && *hc.Init && !hc.PidMode.IsHost() && !hc.PidMode.IsContainer()
	if useInit {
		if in.InitPath == "" {
			return nil, invalid("no init binary is configured for --init")
		}
		args = append([]string{InitPath, "--"}, args...)
		user = append(user, specs.Mount{Destination: InitPath, Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})
	}
	writableCgroups := hc.Privileged
	if so.writableCgroups != nil {
		writableCgroups = *so.writableCgroups
	}

	s := defaultSpec(host.MaskedPaths)
	err = applyOpts(s,
		withProcess(in, args, rl, so.noNewPrivileges, hc),
		withHostname(in, hc),
		withRoot(in.Rootfs, hc.ReadonlyRootfs),
		withNamespaces(hc, ns),
		withSysctls(cfg, hc, in.NetNSPath, host.Sysctls),
		withCgroupsPath(in.CgroupsPath),
		withResources(hc.Resources, devices),
		withDevices(hc, devices),
		withCapabilities(caps),
		withSeccomp(so, hc.Privileged, host),
		withAppArmor(so, host.AppArmor && !hc.Privileged),
		withMounts(mountOptions{
			user:            user,
			shmSize:         hc.ShmSize,
			ipc:             hc.IpcMode,
			readonlyRootfs:  hc.ReadonlyRootfs,
			privileged:      hc.Privileged,
			writableCgroups: writableCgroups,
		}),
		withPaths(hc),
		withAnnotations(hc.Annotations),
	)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func applyOpts(s *specs.Spec, opts ...specOpt) error {
	for _, o := range opts {
		if err := o(s); err != nil {
			return err
		}
	}
	return nil
}

// cloneHostConfig copies what Validate may change, so Generate leaves the
// caller's HostConfig alone.
func cloneHostConfig(hc *container.HostConfig) *container.HostConfig {
	c := *hc
	if hc.MemorySwappiness != nil {
		v := *hc.MemorySwappiness
		c.MemorySwappiness = &v
	}
	if hc.OomKillDisable != nil {
		v := *hc.OomKillDisable
		c.OomKillDisable = &v
	}
	if hc.PidsLimit != nil {
		v := *hc.PidsLimit
		c.PidsLimit = &v
	}
	return &c
}

// processArgs is the entrypoint followed by the command; an entrypoint of
// [""] means none, as `--entrypoint ""` does in Docker.
func processArgs(cfg *container.Config) ([]string, error) {
	var args []string
	if !(len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "") {
		args = append(args, cfg.Entrypoint...)
	}
	args = append(args, cfg.Cmd...)
	if len(args) == 0 {
		return nil, invalid("no command specified")
	}
	return args, nil
}

// defaultSpec is Docker's default Linux spec.
func defaultSpec(extraMasked []string) *specs.Spec {
	masked := []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{},
		Root:    &specs.Root{},
		Mounts:  defaultMounts(),
		Linux: &specs.Linux{
			MaskedPaths:   append(masked, extraMasked...),
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace},
			},
			Devices:   []specs.LinuxDevice{},
			Resources: &specs.LinuxResources{Devices: defaultDeviceRules()},
		},
	}
}

func withProcess(in Input, args []string, rl []specs.POSIXRlimit, nnp bool, hc *container.HostConfig) specOpt {
	return func(s *specs.Spec) error {
		cfg := in.Config
		p := s.Process
		p.Args = args
		p.Env = processEnv(cfg, hostname(in, hc), in.LinkEnv)
		p.Cwd = "/"
		if cfg.WorkingDir != "" {
			p.Cwd = path.Clean(cfg.WorkingDir)
		}
		p.Terminal = cfg.Tty
		if cfg.Tty && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0) {
			p.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
		}
		p.User = specs.User{
			UID:            in.User.UID,
			GID:            in.User.GID,
			AdditionalGids: slices.Clone(in.User.AdditionalGids),
			Umask:          hc.Umask,
		}
		p.Rlimits = rl
		p.NoNewPrivileges = nnp
		score := hc.OomScoreAdj
		p.OOMScoreAdj = &score
		return nil
	}
}

// processEnv is Docker's: PATH, HOSTNAME, (with a TTY) TERM and the links'
// variables, each replaced by the config's own value, then the config's
// other variables. A bare "KEY" in the config unsets KEY.
func processEnv(cfg *container.Config, hostname string, linkEnv []string) []string {
	env := []string{"PATH=" + DefaultPathEnv, "HOSTNAME=" + hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	env = append(env, linkEnv...)
	index := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, e := range cfg.Env {
		k, _, hasValue := strings.Cut(e, "=")
		i, exists := index[k]
		switch {
		case !hasValue && exists:
			env[i] = ""
		case !hasValue:
		case exists:
			env[i] = e
		default:
			index[k] = len(env)
			env = append(env, e)
		}
	}
	return slices.DeleteFunc(env, func(e string) bool { return e == "" })
}

// hostname is the config's, or, as Docker defaults it at create, the short
// id when the container has a network namespace of its own.
func hostname(in Input, hc *container.HostConfig) string {
	if in.Config.Hostname != "" || hostNetwork(hc, in.NetNSPath) || len(in.ID) < 12 {
		return in.Config.Hostname
	}
	return in.ID[:12]
}

func withHostname(in Input, hc *container.HostConfig) specOpt {
	return func(s *specs.Spec) error {
		s.Hostname = hostname(in, hc)
		return nil
	}
}

func withRoot(rootfs string, readonly bool) specOpt {
	return func(s *specs.Spec) error {
		s.Root = &specs.Root{Path: rootfs, Readonly: readonly}
		return nil
	}
}

func withCgroupsPath(p string) specOpt {
	return func(s *specs.Spec) error {
		s.Linux.CgroupsPath = p
		return nil
	}
}

// withPaths applies --privileged (nothing masked or read-only) and the
// HostConfig's own lists (set by `--security-opt systempaths=unconfined`).
func withPaths(hc *container.HostConfig) specOpt {
	return func(s *specs.Spec) error {
		if hc.Privileged {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}
		if hc.MaskedPaths != nil {
			s.Linux.MaskedPaths = slices.Clone(hc.MaskedPaths)
		}
		if hc.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)
		}
		return nil
	}
}

func withAnnotations(a map[string]string) specOpt {
	return func(s *specs.Spec) error {
		if len(a) > 0 {
			s.Annotations = make(map[string]string, len(a))
			for k, v := range a {
				s.Annotations[k] = v
			}
		}
		return nil
	}
}
