// Package oci owns the translation of a container's configuration into an
// OCI runtime spec (config.json), the way Docker builds it: a default spec
// with Docker's mounts, capabilities, masked paths and device rules, changed
// by option functions for the process, user, namespaces, resources,
// security settings and mounts of one container.
//
// Everything here is a pure function of its input. What depends on the host
// (rlimits, capabilities, cgroup features, device nodes) comes in through a
// Host value, filled once by ProbeHost and faked in tests.
//
// It also resolves the container user in the rootfs (ResolveUser) and merges
// an image config into a create request (MergeImageConfig).
package oci

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// invalid returns an ErrInvalidArgument carrying Docker's words.
func invalid(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}
