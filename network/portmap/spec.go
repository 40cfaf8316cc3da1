// Package portmap owns published ports on the host side: parsing
// `-p [ip:][hostPort[-end]:]containerPort[-end][/proto]` specs, and holding
// host ports so that nothing else (another process, another container,
// another berthd) can take one that berth forwards. The forwarding itself is
// DNAT (package iptables); the socket held here only reserves the port.
package portmap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Mapping is one container port and how it is published.
type Mapping struct {
	Port    network.Port
	Binding network.PortBinding
}

// ParseSpec parses one -p/--publish value the way the docker CLI does:
// "80", "8080:80", "127.0.0.1:8080:80/udp", "127.0.0.1::80", "[::1]:8080:80",
// "8000-8001:80-81". A host port range with a single container port
// ("8000-8010:80") is one mapping whose HostPort is the range: the daemon
// picks a free port in it. Errors are ErrInvalidArgument.
func ParseSpec(spec string) ([]Mapping, error) {
	bad := func(why string) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid port specification: %q: %s", spec, why))
	}
	rest, proto := spec, "tcp"
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		rest, proto = spec[:i], strings.ToLower(spec[i+1:])
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, bad("invalid proto " + strconv.Quote(proto))
	}
	var ipStr, hostStr, ctrStr string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return nil, bad("unterminated [")
		}
		ipStr = rest[1:end]
		after := rest[end+1:]
		if !strings.HasPrefix(after, ":") {
			return nil, bad("expected : after the address")
		}
		parts := strings.Split(after[1:], ":")
		if len(parts) != 2 {
			return nil, bad("expected ip:hostPort:containerPort")
		}
		hostStr, ctrStr = parts[0], parts[1]
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrStr = parts[0]
		case 2:
			hostStr, ctrStr = parts[0], parts[1]
		case 3:
			ipStr, hostStr, ctrStr = parts[0], parts[1], parts[2]
		default:
			return nil, bad("too many colons")
		}
	}
	var hostIP netip.Addr
	if ipStr != "" {
		a, err := netip.ParseAddr(ipStr)
		if err != nil || a.Zone() != "" {
			return nil, bad("invalid IP address " + strconv.Quote(ipStr))
		}
		hostIP = a
	}
	if ctrStr == "" {
		return nil, bad("no container port")
	}
	clo, chi, err := parseRange(ctrStr)
	if err != nil {
		return nil, bad(err.Error())
	}
	var hlo, hhi uint16
	if hostStr != "" {
		hlo, hhi, err = parseRange(hostStr)
		if err != nil {
			return nil, bad(err.Error())
		}
	}
	n := int(chi-clo) + 1
	hostRange := hostStr != "" && hhi != hlo
	if hostRange && n > 1 && int(hhi-hlo)+1 != n {
		return nil, bad("host and container port ranges differ in size")
	}
	out := make([]Mapping, 0, n)
	for i := 0; i < n; i++ {
		p, _ := network.PortFrom(clo+uint16(i), network.IPProtocol(proto))
		b := network.PortBinding{HostIP: hostIP}
		switch {
		case hostStr == "":
		case n == 1 && hostRange:
			b.HostPort = fmt.Sprintf("%d-%d", hlo, hhi)
		case n == 1:
			b.HostPort = strconv.Itoa(int(hlo))
		default:
			b.HostPort = strconv.Itoa(int(hlo) + i)
		}
		out = append(out, Mapping{Port: p, Binding: b})
	}
	return out, nil
}

// parseRange parses "80" or "8000-8010".
func parseRange(s string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := parsePort(lo)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return l, l, nil
	}
	h, err := parsePort(hi)
	if err != nil {
		return 0, 0, err
	}
	if h < l {
		return 0, 0, fmt.Errorf("invalid range %s", s)
	}
	return l, h, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return uint16(n), nil
}

// HostPortRange reads a PortBinding.HostPort: "" or "0" is (0, 0), any free
// ephemeral port; "8080" is (8080, 8080); "8000-8010" is the range.
func HostPortRange(s string) (uint16, uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	lo, hi, err := parseRange(s)
	if err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid host port %q: %v", s, err))
	}
	return lo, hi, nil
}
