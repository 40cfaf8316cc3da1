package oci

import (
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

const (
	sysctlPingGroupRange        = "net.ipv4.ping_group_range"
	sysctlUnprivilegedPortStart = "net.ipv4.ip_unprivileged_port_start"
)

// securityOptions is HostConfig.SecurityOpt, parsed as Docker does.
type securityOptions struct {
	noNewPrivileges bool
	apparmor        string // the profile of apparmor=<profile>; "" for the default
	seccomp         string // "" (default profile), "unconfined", "builtin" or a JSON profile
	writableCgroups *bool
}

func parseSecurityOpts(opts []string) (securityOptions, error) {
	var so securityOptions
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			so.noNewPrivileges = true
			continue
		case "writable-cgroups":
			t := true
			so.writableCgroups = &t
			continue
		case "disable":
			continue // an SELinux label option; no SELinux here
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":") // deprecated separator, still accepted by Docker
		}
		if !ok {
			return so, invalid("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "label":
			// SELinux labels: as dockerd on a host without SELinux, accepted and
			// not applied (go-selinux's InitLabels checks nothing there).
			// berth does not support SELinux hosts yet.
		case "apparmor":
			if v == "" {
				return so, invalid("invalid --security-opt 2: %q", opt)
			}
			so.apparmor = v
		case "seccomp":
			so.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, invalid("invalid --security-opt 2: %q", opt)
			}
			so.noNewPrivileges = b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, invalid("invalid --security-opt 2: %q", opt)
			}
			so.writableCgroups = &b
		default:
			return so, invalid("invalid --security-opt 2: %q", opt)
		}
	}
	return so, nil
}

// AppArmorProfile is the profile a container shows in inspect
// (AppArmorProfile): its apparmor= security option, as dockerd records it,
// whether or not the host runs AppArmor.
func AppArmorProfile(opts []string) string {
	so, err := parseSecurityOpts(opts)
	if err != nil {
		return ""
	}
	return so.apparmor
}

// withAppArmor confines the process to the apparmor= profile when the host
// runs AppArmor, as dockerd does; "unconfined" and a host without AppArmor
// leave it unconfined (dockerd ignores the option there too). berth loads no
// default profile of its own yet: without apparmor= the container is
// unconfined where dockerd would use docker-default.
func withAppArmor(so securityOptions, hostHasAppArmor bool) specOpt {
	return func(s *specs.Spec) error {
		if !hostHasAppArmor || so.apparmor == "" || so.apparmor == "unconfined" {
			return nil
		}
		s.Process.ApparmorProfile = so.apparmor
		return nil
	}
}

// withSeccomp applies Docker's default profile, filtered for the final
// capability set, so it must run after withCapabilities.
//
// On a kernel built without the x32 ABI the default profile leaves the x32
// architecture out: libseccomp's filter for it is ~10% of what runc
// compiles at every create and exec (runc create 78.0 -> 70.4 ms here), and
// no x32 system call can succeed there anyway. The one difference a
// container can see is how such a call fails: the kernel's ENOSYS becomes
// the filter's SIGSYS; an x32 program cannot run on such a kernel either
// way. A profile given by the user is applied as given.
func withSeccomp(so securityOptions, privileged bool, host *Host) specOpt {
	return func(s *specs.Spec) error {
		var (
			profile *specs.LinuxSeccomp
			err     error
		)
		switch {
		case so.seccomp == "unconfined":
			return nil
		case so.seccomp == "" || so.seccomp == "builtin":
			if privileged {
				return nil
			}
			profile, err = seccomp.GetDefaultProfile(s)
			if err == nil && host.NoX32ABI {
				profile.Architectures = slices.DeleteFunc(profile.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
			}
		default:
			profile, err = seccomp.LoadProfile(so.seccomp, s)
		}
		if err != nil {
			return invalid("%s", err)
		}
		s.Linux.Seccomp = profile
		return nil
	}
}

// namespacePaths are namespaces to join, found by the runtime for the
// "container:<id>" modes and for networks it set up.
type namespacePaths struct {
	network, ipc, pid string
}

func setNamespace(s *specs.Spec, ns specs.LinuxNamespace) {
	for i, n := range s.Linux.Namespaces {
		if n.Type == ns.Type {
			s.Linux.Namespaces[i] = ns
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
}

func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// hostNetwork says whether the container shares the engine's network
// namespace: --network host, or no network mode and no namespace path given
// (see Input.NetNSPath).
func hostNetwork(hc *container.HostConfig, netns string) bool {
	return hc.NetworkMode.IsHost() || (hc.NetworkMode == "" && netns == "")
}

func checkNamespaceModes(hc *container.HostConfig, p namespacePaths) error {
	if !hc.IpcMode.Valid() {
		return invalid("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return invalid("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return invalid("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return invalid("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if hc.NetworkMode.IsContainer() && p.network == "" {
		return invalid("cannot join network of container %s: no namespace path", hc.NetworkMode.ConnectedContainer())
	}
	if m := hc.NetworkMode; m != "" && !m.IsHost() && !m.IsNone() && !m.IsContainer() && p.network == "" {
		// Never fall back to the host's namespace for a container that asked for a network.
		return invalid("network mode %q needs a network namespace to join", m)
	}
	if hc.IpcMode.IsContainer() && p.ipc == "" {
		return invalid("failed to join IPC namespace: no namespace of container %s", hc.IpcMode.Container())
	}
	if hc.PidMode.IsContainer() && p.pid == "" {
		return invalid("failed to join PID namespace: no namespace of container %s", hc.PidMode.Container())
	}
	if hc.UsernsMode != "" && hc.UsernsMode != "host" {
		return invalid("invalid USER mode: %v: user namespaces are not supported", hc.UsernsMode)
	}
	return nil
}

func withNamespaces(hc *container.HostConfig, p namespacePaths) specOpt {
	return func(s *specs.Spec) error {
		switch {
		case hostNetwork(hc, p.network):
			removeNamespace(s, specs.NetworkNamespace)
		default:
			setNamespace(s, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p.network})
		}
		switch {
		case hc.IpcMode.IsHost():
			removeNamespace(s, specs.IPCNamespace)
		case hc.IpcMode.IsContainer():
			setNamespace(s, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: p.ipc})
		}
		switch {
		case hc.PidMode.IsHost():
			removeNamespace(s, specs.PIDNamespace)
		case hc.PidMode.IsContainer():
			setNamespace(s, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: p.pid})
		}
		if hc.UTSMode.IsHost() {
			removeNamespace(s, specs.UTSNamespace)
			s.Hostname = ""
		}
		if hc.CgroupnsMode.IsPrivate() {
			setNamespace(s, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
		return nil
	}
}

// ipcSysctls are the IPC-namespaced sysctls Docker accepts.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// checkSysctls accepts only sysctls of a namespace the container has its
// own of, as Docker and runc do.
func checkSysctls(hc *container.HostConfig, netns string) error {
	for k := range hc.Sysctls {
		switch {
		case slices.Contains(ipcSysctls, k) || strings.HasPrefix(k, "fs.mqueue."):
			if hc.IpcMode.IsHost() {
				return invalid("sysctl %q is not allowed in the hosts ipc namespace", k)
			}
		case strings.HasPrefix(k, "net."):
			if hostNetwork(hc, netns) {
				return invalid("sysctl %q is not allowed in the hosts network namespace", k)
			}
		case k == "kernel.domainname" || k == "kernel.hostname":
			if hc.UTSMode.IsHost() {
				return invalid("sysctl %q is not allowed in the hosts uts namespace", k)
			}
		default:
			return invalid("sysctl %q is not allowed: it is not in a separate kernel namespace", k)
		}
	}
	return nil
}

// withSysctls sets Docker's defaults for a container network namespace of
// its own, the domain name, then the user's sysctls, which win.
func withSysctls(cfg *container.Config, hc *container.HostConfig, netns string, host map[string]bool) specOpt {
	return func(s *specs.Spec) error {
		sysctl := map[string]string{}
		if !hostNetwork(hc, netns) && !hc.NetworkMode.IsContainer() {
			if host[sysctlPingGroupRange] {
				// unprivileged ICMP echo sockets without CAP_NET_RAW
				sysctl[sysctlPingGroupRange] = "0 2147483647"
			}
			if host[sysctlUnprivilegedPortStart] {
				// ports below 1024 without CAP_NET_BIND_SERVICE
				sysctl[sysctlUnprivilegedPortStart] = "0"
			}
		}
		if cfg.Domainname != "" {
			// no OCI field for the NIS domain name; this sysctl does the same
			sysctl["kernel.domainname"] = cfg.Domainname
		}
		for k, v := range hc.Sysctls {
			sysctl[k] = v
		}
		if len(sysctl) > 0 {
			s.Linux.Sysctl = sysctl
		}
		return nil
	}
}
