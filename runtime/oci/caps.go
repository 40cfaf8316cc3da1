package oci

import (
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// capabilityNames are the kernel's capabilities, indexed by number.
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is Docker's default capability set, in Docker's order.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

const allCapabilities = "ALL"

// normalizeCapabilities upper-cases names, adds the CAP_ prefix, and rejects
// what the kernel does not know or the engine does not hold, like Docker.
func normalizeCapabilities(in, available []string) ([]string, error) {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == allCapabilities {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(capabilityNames, c) {
			return nil, invalid("unknown capability: %q", c)
		}
		if !slices.Contains(available, c) {
			return nil, invalid("capability not supported by your kernel or not available in the current environment: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities computes the container's set: everything the engine holds
// when privileged, otherwise Docker's defaults with --cap-drop then --cap-add.
func capabilities(hc *container.HostConfig, available []string) ([]string, error) {
	if hc.Privileged {
		return slices.Clone(available), nil
	}
	base := DefaultCapabilities()
	if len(hc.CapAdd) == 0 && len(hc.CapDrop) == 0 {
		return base, nil
	}
	drop, err := normalizeCapabilities(hc.CapDrop, capabilityNames)
	if err != nil {
		return nil, err
	}
	add, err := normalizeCapabilities(hc.CapAdd, available)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, allCapabilities):
		for _, c := range available {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, allCapabilities):
		caps = add
	default:
		for _, c := range base {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range add {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

func withCapabilities(caps []string) specOpt {
	return func(s *specs.Spec) error {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:  caps,
			Effective: caps,
			Permitted: caps,
		}
		return nil
	}
}
