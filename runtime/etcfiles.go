package runtime

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// hostHostsFile is the host's /etc/hosts, which a container on the host's
// network sees (a variable for tests).
var hostHostsFile = "/etc/hosts"

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf under its directory and returns the bind mounts. links
// are its legacy links, each a line in /etc/hosts.
func (s *Service) writeEtcFiles(rec *Record, links []legacyLink) ([]specs.Mount, error) {
	if mode := string(rec.HostConfig.NetworkMode); isContainerMode(mode) {
		return s.joinedEtcFiles(rec, strings.TrimPrefix(mode, "container:"))
	}
	dir := s.containerDir(rec.ID)
	hostname := rec.Config.Hostname
	hosts, err := s.hostsFile(rec, links)
	if err != nil {
		return nil, err
	}
	return putEtcFiles(rec, dir, [][]byte{[]byte(hostname + "\n"), hosts, s.resolvConf(rec)})
}

// placeEtcFiles creates the container's /etc files empty and returns their
// mounts; writeEtcFiles fills them in place before the container runs.
func (s *Service) placeEtcFiles(rec *Record) ([]specs.Mount, error) {
	return putEtcFiles(rec, s.containerDir(rec.ID), make([][]byte, len(etcFiles)))
}

// putEtcFiles writes data[i] to etcFiles[i] in dir (in place: a running
// container's mounts keep their inodes) and returns their mounts.
func putEtcFiles(rec *Record, dir string, data [][]byte) ([]specs.Mount, error) {
	var mounts []specs.Mount
	for i, f := range etcFiles {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, data[i], 0o644); err != nil {
			return nil, err
		}
		mounts = append(mounts, etcMount(rec, f.dest, p))
	}
	return mounts, nil
}

// etcFiles are the files of a container's /etc that berth writes, by name
// in its directory, in their order.
var etcFiles = []struct{ name, dest string }{
	{"hostname", "/etc/hostname"}, {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"},
}

// hostsFile is the container's /etc/hosts as dockerd writes it: on the
// host's network without --add-host, a copy of the host's; otherwise the
// standard entries, the extra hosts, the container's own address, and one
// line per legacy link.
func (s *Service) hostsFile(rec *Record, links []legacyLink) ([]byte, error) {
	if rec.HostConfig.NetworkMode.IsHost() && len(rec.HostConfig.ExtraHosts) == 0 {
		data, err := os.ReadFile(hostHostsFile)
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("could not copy source hosts file %s: %w", hostHostsFile, err)
		}
		return data, nil
	}
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
		if ep := rec.Endpoints[primary]; ep != nil {
			// dockerd's order: the IPv4 address, then the IPv6 one
			for _, ip := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
				if ip.IsValid() {
					fmt.Fprintf(&hosts, "%s\t%s\n", ip, names)
				}
			}
		}
	}
	for _, l := range links {
		hosts.WriteString(l.hosts)
	}
	return hosts.Bytes(), nil
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
	for _, f := range etcFiles {
		mounts = append(mounts, etcMount(rec, f.dest, filepath.Join(dir, f.name)))
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
