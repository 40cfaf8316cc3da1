package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/network"
	"github.com/berthd/berth/network/ipam"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/moby/moby/api/types/container"

	"github.com/spf13/pflag"
)

// config is berthd's command line, named like dockerd's flags.
type config struct {
	Host               string
	DataRoot           string
	ExecRoot           string
	Pidfile            string
	Debug              bool
	LogLevel           string
	InsecureRegistries []string
	CgroupParent       string
	Bridge             string
	BIP                string
	AddressPools       []string
	IPv6               bool
	FixedCIDRv6        string
	DNSZone            string
	DNS                []string
	DNSSearch          []string
	LogDriver          string
	LogOpts            []string
	MaxUploadSize      int64
	// logOpts is LogOpts checked, as a map
	logOpts map[string]string
	// DefaultIpcMode is the IPC mode of containers that ask for none.
	DefaultIpcMode string
	// CPURealtimePeriod and CPURealtimeRuntime go to the containers'
	// parent cgroups.
	CPURealtimePeriod, CPURealtimeRuntime int64
	// ConfigFile is the daemon.json read for what the flags leave unset.
	ConfigFile string
	// RegistryMirrors are tried, in order, before Docker Hub for its images.
	RegistryMirrors []string
	// AddRuntimes are name=path OCI runtimes besides runc.
	AddRuntimes []string
	// DefaultRuntime runs containers that name none.
	DefaultRuntime string
	// LiveRestore is accepted for dockerd's daemon.json: berth always keeps
	// containers running across a daemon restart.
	LiveRestore bool
	// Kubeconfig selects the Kubernetes backend (docs/kubernetes.md): the
	// API is served from that cluster; KubeContext is the kubeconfig's
	// context ("" its current one), KubeNamespacePrefix goes before every
	// project's namespace.
	Kubeconfig, KubeContext, KubeNamespacePrefix string
	// Features is daemon.json's features map (accepted, not used).
	Features map[string]bool
	// runtimeArgs are daemon.json runtimes' runtimeArgs, by runtime name.
	runtimeArgs map[string][]string
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := pflag.NewFlagSet("berthd", pflag.ContinueOnError)
	fs.StringVarP(&c.Host, "host", "H", "unix:///run/berth/docker.sock", "Daemon socket to listen on (unix://PATH)")
	fs.StringVar(&c.DataRoot, "data-root", "/var/lib/berth", "Root directory of persistent state")
	fs.StringVar(&c.ExecRoot, "exec-root", "/run/berth", "Root directory for execution state files")
	fs.StringVarP(&c.Pidfile, "pidfile", "p", "", "Path to use for the daemon PID file (default <exec-root>/berthd.pid)")
	fs.BoolVarP(&c.Debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&c.LogLevel, "log-level", "l", "info", `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	fs.StringVar(&c.CgroupParent, "cgroup-parent", "berth", "Parent cgroup for all containers")
	fs.StringSliceVar(&c.InsecureRegistries, "insecure-registry", nil, "Registries reached over plain HTTP or without TLS verification")
	fs.StringVarP(&c.Bridge, "bridge", "b", "berth0", "Bridge device of the default network (also tags the daemon's iptables chains)")
	fs.StringVar(&c.BIP, "bip", "10.210.0.1/24", "Address and prefix of the default bridge")
	fs.StringArrayVar(&c.AddressPools, "default-address-pool", nil, "Address pool for user networks, base=CIDR,size=N, IPv4 or IPv6 (repeatable; default base=10.210.0.0/16,size=24 and a ULA /48 derived from the host, size 64)")
	fs.BoolVar(&c.IPv6, "ipv6", false, "Enable IPv6 on the default bridge network")
	fs.StringVar(&c.FixedCIDRv6, "fixed-cidr-v6", "", "IPv6 subnet of the default bridge network (with --ipv6; default: one from the IPv6 address pools)")
	fs.StringVar(&c.DNSZone, "dns-zone", compose.DefaultZone, "DNS zone served by the embedded DNS server")
	fs.StringArrayVar(&c.DNS, "dns", nil, "Upstream DNS server of the embedded DNS server (repeatable; default: the host's /etc/resolv.conf)")
	fs.StringArrayVar(&c.DNSSearch, "dns-search", nil, "DNS search domains of containers, after berth's own (repeatable)")
	fs.StringVar(&c.LogDriver, "log-driver", "json-file", "Default driver for container logs")
	fs.StringArrayVar(&c.LogOpts, "log-opt", nil, "Default log driver option for containers, key=value (repeatable; e.g. max-size=10m)")
	fs.Int64Var(&c.CPURealtimePeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds for the parent cgroup for all containers")
	fs.Int64Var(&c.CPURealtimeRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds for the parent cgroup for all containers")
	fs.StringVar(&c.DefaultIpcMode, "default-ipc-mode", string(container.IPCModePrivate), `Default mode for containers ipc ("shareable" | "private")`)
	fs.Int64Var(&c.MaxUploadSize, "max-upload-size", 0, "Most bytes one build context, image archive (load) or tarball (import) may unpack to (0: no cap; 1% of the disk, at most 256 MiB, is always kept free)")
	fs.StringVar(&c.ConfigFile, "config-file", defaultConfigFile, "Daemon configuration file (dockerd's daemon.json keys)")
	fs.StringArrayVar(&c.RegistryMirrors, "registry-mirror", nil, "Preferred Docker registry mirror (repeatable)")
	fs.StringArrayVar(&c.AddRuntimes, "add-runtime", nil, "Register an additional OCI compatible runtime, name=path (repeatable)")
	fs.StringVar(&c.DefaultRuntime, "default-runtime", "runc", "Default OCI runtime for containers")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "Serve the API from the Kubernetes cluster of this kubeconfig (the Kubernetes backend)")
	fs.StringVar(&c.KubeContext, "kube-context", "", "Context of --kubeconfig to use (default: its current context)")
	fs.StringVar(&c.KubeNamespacePrefix, "kube-namespace-prefix", "", "Prefix of the namespaces the Kubernetes backend makes (one per compose project)")
	fs.BoolVar(&c.LiveRestore, "live-restore", true, "Keep containers alive during daemon downtime (always on in berth)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := applyConfigFile(fs, c, c.ConfigFile, fs.Changed("config-file")); err != nil {
		return nil, err
	}
	if c.Pidfile == "" {
		c.Pidfile = c.ExecRoot + "/berthd.pid"
	}
	var err error
	if c.logOpts, err = c.parseLogOpts(); err != nil {
		return nil, err
	}
	if err := checkDefaultIpcMode(c.DefaultIpcMode); err != nil {
		return nil, err
	}
	return c, nil
}

// checkDefaultIpcMode accepts what dockerd accepts as --default-ipc-mode,
// with its words.
func checkDefaultIpcMode(mode string) error {
	const hint = `use "shareable" or "private"`
	m := container.IpcMode(mode)
	if !m.Valid() {
		return fmt.Errorf("default IPC mode setting (%v) is invalid; "+hint, m)
	}
	if m != "" && !m.IsPrivate() && !m.IsShareable() {
		return fmt.Errorf(`IPC mode "%v" is not supported as default value; `+hint, m)
	}
	return nil
}

// networkConfig turns the network flags into the network subsystem's config.
func (c *config) networkConfig() (network.Config, error) {
	nc := network.DefaultConfig(c.ExecRoot)
	nc.Bridge, nc.DNSZone, nc.DNSServers = c.Bridge, c.DNSZone, c.DNS
	bip, err := netip.ParsePrefix(c.BIP)
	if err != nil {
		return nc, fmt.Errorf("invalid --bip %q: %w", c.BIP, err)
	}
	nc.BIP = bip
	nc.IPv6 = c.IPv6
	if c.FixedCIDRv6 != "" {
		p, err := netip.ParsePrefix(c.FixedCIDRv6)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
			return nc, fmt.Errorf("invalid fixed-cidr-v6: %q is not an IPv6 CIDR", c.FixedCIDRv6)
		}
		nc.FixedCIDRv6 = p
	}
	if len(c.AddressPools) > 0 {
		nc.Pools = nil
		for _, s := range c.AddressPools {
			p, err := ipam.ParsePool(s)
			if err != nil {
				return nc, fmt.Errorf("--default-address-pool: %w", err)
			}
			nc.Pools = append(nc.Pools, p)
		}
	}
	return nc, nil
}

// parseLogOpts returns the default log options of new containers, checked
// as a container's own are.
func (c *config) parseLogOpts() (map[string]string, error) {
	opts := map[string]string{}
	for _, kv := range c.LogOpts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--log-opt %q: not a key=value pair", kv)
		}
		opts[k] = v
	}
	if err := logdriver.Validate(c.LogDriver, opts); err != nil {
		return nil, fmt.Errorf("failed to set log opts: %w", err)
	}
	return opts, nil
}

// socketPath returns the filesystem path of a unix:// host.
func (c *config) socketPath() (string, error) {
	p, ok := strings.CutPrefix(c.Host, "unix://")
	if !ok || p == "" {
		return "", fmt.Errorf("invalid --host %q: only unix:///path/to/socket is supported", c.Host)
	}
	return p, nil
}
