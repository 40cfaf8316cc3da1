package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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
