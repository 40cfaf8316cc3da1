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
