// Package imagefs declares, once, the shapes the image store and its
// consumers exchange: a local image, a commit of a container's root
// filesystem, and a container root filesystem in the store. registry
// produces them; runtime and builder consume them through interfaces of
// their own. It is a leaf: it imports nothing of berth, so a consumer that
// names these types does not link the image store.
package imagefs

import (
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Image is a local image as the runtime and the builder need it.
type Image struct {
	// ID is the config digest, "sha256:<64 hex>".
	ID string
	// RepoTags and RepoDigests are familiar references ("busybox:latest",
	// "busybox@sha256:...").
	RepoTags    []string
	RepoDigests []string
	// Config is the image's run configuration (Cmd, Entrypoint, Env,
	// WorkingDir, User, Labels, Volumes, ExposedPorts, StopSignal,
	// Healthcheck, ...).
	Config  dockerspec.DockerOCIImageConfig
	Created time.Time
	// OS, Architecture and Variant are the image's platform.
	OS, Architecture, Variant string
}

// CommitRequest is a docker commit: which container's root filesystem
// becomes a new image, with what run config and history entry.
type CommitRequest struct {
	ContainerID string
	// Config is the new image's run config, complete (the caller merged the
	// container's config and the --change instructions into it).
	Config dockerspec.DockerOCIImageConfig
	// Repo and Tag name the image; no Repo leaves it untagged.
	Repo, Tag string
	// Author, Comment and CreatedBy go into the image and its history.
	Author, Comment, CreatedBy string
	// CacheKey marks an image of a Dockerfile step, for the builder's
	// cache (registry's CachedStep); docker commit leaves it empty.
	CacheKey string
}

// RootfsOptions are how a container's root filesystem is made.
type RootfsOptions struct {
	// Volatile: nothing of the writable layer is needed after the container
	// ends or after a host crash (a --rm container's). The layer is mounted
	// with overlay's volatile option (no sync of the upper file system on
	// unmount, fsync inside is a no-op) and its store records are written
	// without fsync. See registry/rootfs.go.
	Volatile bool
}

// Rootfs is one container root filesystem in the image store.
type Rootfs struct {
	ContainerID string
	Mounted     bool // its layer is mounted (counted in the store's run state, or in the mount table)
	// MountPath is the merged directory when the store counts a mount of
	// the layer and the mount table has it there: a running container's
	// root filesystem after a daemon crash (mounts live in the host's mount
	// namespace). The restore takes it as it is, without mounting again (a
	// store write under the store's lock) or adding to the count. "" else.
	MountPath string
	// StaleMount: the store counts a mount the mount table does not have
	// (unmounted behind the store's back, or by a host reboot with the run
	// root kept). A mount would add to the stale count; unmount first.
	StaleMount bool
}
