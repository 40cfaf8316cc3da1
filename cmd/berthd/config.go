package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthd/berth/network"
	"github.com/berthd/berth/network/ipam"

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
	DNSZone            string
	DNS                []string
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
	fs.StringArrayVar(&c.AddressPools, "default-address-pool", nil, "Address pool for user networks, base=CIDR,size=N (repeatable; default base=10.210.0.0/16,size=24)")
	fs.StringVar(&c.DNSZone, "dns-zone", "berth.internal", "DNS zone served by the embedded DNS server")
	fs.StringArrayVar(&c.DNS, "dns", nil, "Upstream DNS server of the embedded DNS server (repeatable; default: the host's /etc/resolv.conf)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.Pidfile == "" {
		c.Pidfile = c.ExecRoot + "/berthd.pid"
	}
	return c, nil
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

// socketPath returns the filesystem path of a unix:// host.
func (c *config) socketPath() (string, error) {
	p, ok := strings.CutPrefix(c.Host, "unix://")
	if !ok || p == "" {
		return "", fmt.Errorf("invalid --host %q: only unix:///path/to/socket is supported", c.Host)
	}
	return p, nil
}
