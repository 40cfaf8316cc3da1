package runtime

import (
	"context"
	"net/netip"
	"os"
	"syscall"

	"github.com/berthd/berth/network/endpoint"
	"github.com/berthd/berth/registry/imagefs"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/berthd/berth/runtime/monitor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// The interfaces runtime consumes. Each subsystem implements one as it is
// (the shapes they exchange are declared once, in leaf packages such as
// registry/imagefs and network/endpoint); cmd/berthd only wires them. They
// are small on purpose: runtime needs little of each.

// Image is what runtime needs to know of an image (declared once, in
// imagefs, for the image store and its consumers).
type Image = imagefs.Image

// CommitRequest is what the image service needs to make the image of a
// docker commit.
type CommitRequest = imagefs.CommitRequest

// RootfsInfo is one container root filesystem in the image store.
type RootfsInfo = imagefs.Rootfs

// RootfsOptions are how a container's root filesystem is made.
type RootfsOptions = imagefs.RootfsOptions

// Images resolves images and owns container root filesystems.
type Images interface {
	// Image resolves a reference, ID or unique ID prefix; ErrNotFound
	// ("No such image: x") when there is no such local image.
	Image(ctx context.Context, ref string) (*Image, error)
	// CreateRootfs makes the writable layer of containerID on imageID.
	CreateRootfs(ctx context.Context, containerID, imageID string, opts RootfsOptions) error
	// MountRootfs mounts the container's root filesystem and returns its path.
	MountRootfs(ctx context.Context, containerID string) (string, error)
	// UnmountRootfs and RemoveRootfs are idempotent; RemoveRootfs
	// unmounts what is still mounted.
	UnmountRootfs(ctx context.Context, containerID string) error
	RemoveRootfs(ctx context.Context, containerID string) error
	// BeginRemoveRootfs is RemoveRootfs for a removal answered before it
	// is done: from the call on, the image store counts the container as
	// no user of its image, and waits for the returned function (which
	// removes, and must be called once) where it would show.
	BeginRemoveRootfs(containerID string) (remove func(context.Context) error)
	// RootfsSize is the size of the writable layer and of the whole root
	// filesystem, image included.
	RootfsSize(ctx context.Context, containerID string) (rw, total int64, err error)
	// RootfsChanges lists the writable layer's changes to the image
	// (docker diff), sorted by path; ErrNotFound for an unknown container.
	RootfsChanges(ctx context.Context, containerID string) ([]container.FilesystemChange, error)
	// Commit makes an image of a container's root filesystem (docker
	// commit) and returns its ID.
	Commit(ctx context.Context, req CommitRequest) (string, error)
	// Rootfses lists every container root filesystem in the store, so a
	// daemon start can reap those of creates cut by a crash and unmount
	// those of starts cut half-way.
	Rootfses(ctx context.Context) ([]RootfsInfo, error)
}

// LogLine is one entry of a container's log (logfile's Message, the one
// shape of a log entry, read or written).
type LogLine = logfile.Message

// AttachRequest asks the network layer to plug a container into a network;
// RestoreRequest describes a running container's network state (declared
// once, in network/endpoint).
type (
	AttachRequest  = endpoint.AttachRequest
	RestoreRequest = endpoint.RestoreRequest
)

// DNSSearch is the policy that gives a container's DNS search domains from
// its labels; the runtime writes them into resolv.conf and knows nothing of
// what they mean (compose.SearchDomains).
type DNSSearch interface {
	SearchDomains(labels map[string]string) []string
}

// NetworkRef names a network.
type NetworkRef = endpoint.NetworkRef

// Networks sets up container network namespaces, endpoints and ports.
type Networks interface {
	CreateSandbox(ctx context.Context, containerID string) (nsPath string, err error)
	DeleteSandbox(ctx context.Context, containerID string) error
	Attach(ctx context.Context, nsPath string, req AttachRequest) (*network.EndpointSettings, error)
	Detach(ctx context.Context, containerID, network string) error
	PublishPorts(ctx context.Context, containerID string, ip netip.Addr, bindings network.PortMap, publishAll bool, exposed network.PortSet) (network.PortMap, error)
	UnpublishPorts(ctx context.Context, containerID string) error
	// Restore re-registers a running container's endpoints, port
	// publications and DNS records after a daemon restart.
	Restore(ctx context.Context, req RestoreRequest) error
	// DNSServer is where berth's DNS server answers a container whose
	// primary network is given: that network's gateway (the default
	// bridge's for an unknown or non-bridge network).
	DNSServer(primaryNetwork string) netip.Addr
	// Network resolves a network name, id or unique id prefix; ErrNotFound
	// ("network x not found") otherwise.
	Network(ctx context.Context, idOrName string) (NetworkRef, error)
}

// Volumes provides named and anonymous volumes.
type Volumes interface {
	// CreateWithRef creates the volume (or finds the one of that name; ""
	// makes an anonymous one) and marks it used by the container, in one
	// step so that a prune cannot take it in between.
	CreateWithRef(ctx context.Context, req volume.CreateRequest, containerID string) (*volume.Volume, error)
	// Ref marks the volume used by the container from create to remove (it
	// cannot be removed meanwhile); Release drops that. Both idempotent.
	Ref(ctx context.Context, name, containerID string) error
	Release(ctx context.Context, name, containerID string) error
	Mount(ctx context.Context, name, containerID string) (string, error)
	Unmount(ctx context.Context, name, containerID string) error
	Remove(ctx context.Context, name string, force bool) error
	// CopyUp copies the directory at destination in the container's root
	// filesystem (resolved in rootfs) into the volume directory open at
	// into, when that is empty (dockerd's copy-up); nothing is followed
	// out of either.
	CopyUp(rootfs, destination string, into *os.File) error
}

// Publisher receives container events.
type Publisher interface {
	Publish(events.Message)
}

// The monitor seam (package monitor), under the names runtime's code
// uses.
type (
	ExitStatus     = monitor.ExitStatus
	MonitorConfig  = monitor.Config
	Monitors       = monitor.Monitors
	MonitorPending = monitor.Pending
	Streams        = monitor.Streams
	Task           = monitor.Task
	ExecConfig     = monitor.ExecConfig
	ExecTask       = monitor.ExecTask
)

// OCIRuntime runs the OCI runtime commands that need no monitor.
type OCIRuntime interface {
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Update applies new resource limits to a running container.
	Update(ctx context.Context, id string, r *container.Resources) error
	// Kill signals every process of a container directly, for one whose
	// monitor is gone. ErrNotFound when the runtime does not know the
	// container, ErrConflict when it has stopped.
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	// Delete removes the runtime's state and cgroup of a container whose
	// monitor is gone, killing what is left. Unknown ids are not an error.
	Delete(ctx context.Context, id string) error
}
