package runtime

import (
	"fmt"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// RuntimeName is the OCI runtime of containers when the daemon names no
// other (Deps.Runtimes).
const RuntimeName = "runc"

// Runtimes are the OCI runtimes the daemon has (--add-runtime, daemon.json).
type Runtimes interface {
	// Resolve returns the runtime a container asking for name runs with
	// ("" is the default one); ErrInvalidArgument in dockerd's words for
	// an unknown runtime or one whose binary is missing.
	Resolve(name string) (string, error)
}

// runtimeOf is the runtime a container runs with: records from before
// runtimes could be chosen name none, and ran with runc.
func runtimeOf(rec *Record) string {
	if rec.HostConfig.Runtime == "" {
		return RuntimeName
	}
	return rec.HostConfig.Runtime
}

// runcOnly is Runtimes when the daemon has no other.
type runcOnly struct{}

func (runcOnly) Resolve(name string) (string, error) {
	if name == "" || name == RuntimeName {
		return RuntimeName, nil
	}
	return "", errdefs.ErrInvalidArgument.WithMessage("unknown or invalid runtime name: " + name)
}

// validateNetMode refuses the network settings dockerd refuses together
// (runconfig.validateNetMode), before the image's config is merged in.
func validateNetMode(cfg *container.Config, hc *container.HostConfig) error {
	bad := func(msg string) error { return errdefs.ErrInvalidArgument.WithMessage(msg) }
	if string(hc.NetworkMode) == "container" || hc.NetworkMode.IsContainer() {
		switch {
		case hc.NetworkMode.ConnectedContainer() == "":
			return bad("invalid network mode: invalid container format container:<name|id>")
		case cfg.Hostname != "":
			return bad("conflicting options: hostname and the network mode")
		case len(hc.Links) > 0:
			return bad("conflicting options: container type network can't be used with links. This would result in undefined behavior")
		case len(hc.DNS) > 0:
			return bad("conflicting options: dns and the network mode")
		case len(hc.ExtraHosts) > 0:
			return bad("conflicting options: custom host-to-IP mapping and the network mode")
		case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
			return bad("conflicting options: port publishing and the container type network mode")
		case len(cfg.ExposedPorts) > 0:
			return bad("conflicting options: port exposing and the container type network mode")
		}
	}
	if hc.UTSMode.IsHost() && cfg.Hostname != "" {
		return bad("conflicting options: hostname and the UTS mode")
	}
	if hc.NetworkMode.IsHost() && len(hc.Links) > 0 {
		return bad("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	return nil
}

// adaptNamespaces fills in the daemon's default IPC mode and replaces
// container names in IpcMode and PidMode by full IDs, as dockerd's
// adaptContainerSettings does, so that sharing survives a rename of the
// other container. A container that does not exist is not found, as in
// dockerd (which looks it up for its security labels).
func (s *Service) adaptNamespaces(hc *container.HostConfig) error {
	if hc.IpcMode.IsEmpty() {
		hc.IpcMode = s.d.DefaultIpcMode
		if hc.IpcMode.IsEmpty() {
			hc.IpcMode = container.IPCModePrivate
		}
	}
	if hc.IpcMode.IsContainer() {
		other, err := s.lookup(hc.IpcMode.Container())
		if err != nil {
			return err
		}
		hc.IpcMode = container.IpcMode("container:" + other.rec.ID)
	}
	if hc.PidMode.IsContainer() {
		other, err := s.lookup(hc.PidMode.Container())
		if err != nil {
			return err
		}
		hc.PidMode = container.PidMode("container:" + other.rec.ID)
	}
	rt, err := s.d.Runtimes.Resolve(hc.Runtime)
	if err != nil {
		return err
	}
	hc.Runtime = rt
	return nil
}

// checkVolumesFrom refuses --volumes-from a container that does not exist
// as dockerd does: invalid input (a 404 would make the CLI pull the image).
func (s *Service) checkVolumesFrom(hc *container.HostConfig) error {
	for _, ref := range hc.VolumesFrom {
		id, _, err := mounts.ParseVolumesFrom(ref)
		if err != nil {
			return err
		}
		if _, err := s.lookup(id); err != nil {
			if errdefs.IsNotFound(err) {
				return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
			}
			return err
		}
	}
	return nil
}

// checkPlatform refuses an image that is not of the platform a create asks
// for (os[/arch[/variant]]), with dockerd's not-found error: the CLI then
// tries to pull that platform.
func checkPlatform(want string, img *Image, ref string) error {
	if want == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(want), "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q: unknown operating system or architecture: invalid argument", want))
	}
	os, arch, variant := parts[0], "", ""
	if len(parts) > 1 {
		arch = normalizeArch(parts[1])
	}
	if len(parts) > 2 {
		variant = parts[2]
	}
	imgOS, imgArch := img.OS, normalizeArch(img.Architecture)
	if imgOS == "" {
		imgOS = "linux"
	}
	match := os == imgOS && (arch == "" || arch == imgArch) &&
		(variant == "" || img.Variant == "" || variant == img.Variant)
	if match {
		return nil
	}
	have := imgOS + "/" + img.Architecture
	if img.Variant != "" {
		have += "/" + img.Variant
	}
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)", ref, have, want))
}

func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armhf", "armel":
		return "arm"
	case "i386", "i686":
		return "386"
	}
	return a
}
