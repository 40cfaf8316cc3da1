package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

const composeProjectLabel = "com.docker.compose.project"

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf under its directory and returns the bind mounts.
func (s *Service) writeEtcFiles(rec *Record) ([]specs.Mount, error) {
	if mode := string(rec.HostConfig.NetworkMode); isContainerMode(mode) {
		return s.joinedEtcFiles(rec, strings.TrimPrefix(mode, "container:"))
	}
	dir := s.containerDir(rec.ID)
	hostname := rec.Config.Hostname
	var hosts bytes.Buffer
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, eh := range rec.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(eh, ":")
		if !ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid extra host entry %q: expected host:ip", eh))
		}
		if ip == "host-gateway" {
			if gw := s.gateway(rec); gw != "" {
				ip = gw
			}
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	names := hostname
	if rec.Config.Domainname != "" {
		names = hostname + "." + rec.Config.Domainname + " " + hostname
	}
	if primary, ok := s.primaryNetwork(rec); ok {
		if ep := rec.Endpoints[primary]; ep != nil && ep.IPAddress.IsValid() {
			fmt.Fprintf(&hosts, "%s\t%s\n", ep.IPAddress, names)
		}
	}

	files := []struct {
		name, dest string
		data       []byte
	}{
		{"hostname", "/etc/hostname", []byte(hostname + "\n")},
		{"hosts", "/etc/hosts", hosts.Bytes()},
		{"resolv.conf", "/etc/resolv.conf", s.resolvConf(rec)},
	}
	var mounts []specs.Mount
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return nil, err
		}
		mounts = append(mounts, etcMount(rec, f.dest, p))
	}
	return mounts, nil
}

// resolvConf is the container's /etc/resolv.conf: the host's for host and
// none, else berth's DNS server on the primary network's gateway.
func (s *Service) resolvConf(rec *Record) []byte {
	var resolv []byte
	switch mode := string(rec.HostConfig.NetworkMode); {
	case mode == "host" || mode == "none":
		resolv = hostResolvConf(mode == "none")
	default:
		primary, _ := s.primaryNetwork(rec)
		resolv = s.d.Networks.ResolvConf(primary, rec.Config.Labels[composeProjectLabel])
	}
	return applyDNSOptions(resolv, rec)
}

// refreshResolvConf rewrites a running container's resolv.conf in place
// (the bind mount shows the new content) after a disconnect: when the
// nameserver was the gone network's gateway it is out of reach. Every
// attached network's gateway is on-link; the network layer moves the
// default route when the primary network goes.
func (s *Service) refreshResolvConf(rec *Record) error {
	if mode := string(rec.HostConfig.NetworkMode); mode == "host" || mode == "none" || isContainerMode(mode) {
		return nil
	}
	return os.WriteFile(filepath.Join(s.containerDir(rec.ID), "resolv.conf"), s.resolvConf(rec), 0o644)
}

func etcMount(rec *Record, dest, src string) specs.Mount {
	opts := []string{"rbind", "rprivate"}
	if rec.HostConfig.ReadonlyRootfs {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: opts}
}

// joinedEtcFiles serves --network container:<other>: the container sees the
// other's /etc/hostname, /etc/hosts and /etc/resolv.conf (so the other's
// networks' names resolve) and takes its hostname, as dockerd does
// (initializeNetworking).
func (s *Service) joinedEtcFiles(rec *Record, otherName string) ([]specs.Mount, error) {
	other, err := s.lookup(otherName)
	if err != nil {
		return nil, err
	}
	other.mu.Lock()
	dir := s.containerDir(other.rec.ID)
	rec.Config.Hostname, rec.Config.Domainname = other.rec.Config.Hostname, other.rec.Config.Domainname
	other.mu.Unlock()
	var mounts []specs.Mount
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		mounts = append(mounts, etcMount(rec, "/etc/"+f, filepath.Join(dir, f)))
	}
	return mounts, nil
}

func (s *Service) gateway(rec *Record) string {
	for _, ep := range rec.Endpoints {
		if ep != nil && ep.Gateway.IsValid() {
			return ep.Gateway.String()
		}
	}
	return ""
}

// hostResolvConf is the host's resolv.conf; for --network none the
// loopback servers are dropped since nothing can reach them, like dockerd.
func hostResolvConf(dropLoopback bool) []byte {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	if !dropLoopback {
		return b
	}
	var out bytes.Buffer
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out.WriteString(line + "\n")
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

// applyDNSOptions applies --dns, --dns-search and --dns-option.
func applyDNSOptions(resolv []byte, rec *Record) []byte {
	hc := rec.HostConfig
	if len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		return resolv
	}
	var out bytes.Buffer
	for _, line := range strings.Split(string(resolv), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if (f[0] == "nameserver" && len(hc.DNS) > 0) || (f[0] == "search" && len(hc.DNSSearch) > 0) || (f[0] == "options" && len(hc.DNSOptions) > 0) {
			continue
		}
		out.WriteString(line + "\n")
	}
	for _, ns := range hc.DNS {
		fmt.Fprintf(&out, "nameserver %s\n", ns)
	}
	if len(hc.DNSSearch) > 0 {
		fmt.Fprintf(&out, "search %s\n", strings.Join(hc.DNSSearch, " "))
	}
	if len(hc.DNSOptions) > 0 {
		fmt.Fprintf(&out, "options %s\n", strings.Join(hc.DNSOptions, " "))
	}
	return out.Bytes()
}
