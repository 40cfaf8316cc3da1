package runtime

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/volume/mounts"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Record is what berth persists about a container (one bbolt record). It
// holds the configuration as Docker reports it in inspect, the state, and
// the resources the container owns while it runs.
type Record struct {
	ID         string
	Name       string // with the leading "/"
	Created    time.Time
	Path       string
	Args       []string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Networks is the wanted network attachment per network name: the
	// endpoint config given at create or connect. While running, Endpoints
	// holds what the network layer really set up.
	Networks  map[string]*network.EndpointSettings
	Endpoints map[string]*network.EndpointSettings
	Ports     network.PortMap
	Image     string // image ID
	State     State
	Mounts    []MountPoint
	// Links are the legacy links on the default bridge: alias -> ID of the
	// linked container, resolved at create (see links.go).
	Links map[string]string `json:",omitempty"`

	RestartCount int
	// ManuallyStopped is set by docker stop/kill and cleared by start: the
	// restart policy must not bring such a container back (except always,
	// after a daemon restart, as dockerd does).
	ManuallyStopped bool
	// HasBeenStarted tells "created" from "exited" before any start.
	HasBeenStarted bool
	// SandboxKey is the path of the network namespace while running.
	SandboxKey string
	// Broken is set when the record could not be fully restored.
	Broken string `json:",omitempty"`
}

// State is the container's lifecycle state.
type State struct {
	Status     container.ContainerState
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *container.Health `json:",omitempty"`
}

// MountPoint is one mount of the container, as parsed at create (volumes
// resolved to their names and data directories).
type MountPoint struct {
	Spec mounts.MountSpec
	// Anonymous volumes are created for the container and go with `rm -v`.
	Anonymous bool `json:",omitempty"`
}

// ctr is the in-memory container: its record, guarded by mu, and what only
// lives while the daemon runs.
type ctr struct {
	mu  sync.Mutex
	rec *Record
	// view is rec as last published (see view.go): what readers read,
	// without mu.
	view atomic.Pointer[Record]
	// restored is closed once the container is restored after a daemon
	// start (see "The restore phase"); operations on it wait for that.
	restored chan struct{}
	// changed is closed and replaced at every state change: waiters select on it.
	changed chan struct{}
	// task is the monitor of the running container (nil when not running).
	task Task
	// pendingAttach are attach streams waiting for the next start.
	pendingAttach []*Attachment
	// stopping is set while stop or kill by the user is in progress.
	stopping bool
	// removing is set while one caller owns the container's removal (see
	// claimRemoval); every other removal, start or restart backs off.
	removing bool
	// exitSeq counts the exits recorded since the daemon started, so a
	// wait can tell the next exit from the last one.
	exitSeq int
	// manualRestart is set while docker restart stops the container: its
	// exit must not remove an auto-remove container.
	manualRestart bool
	// removed is closed when the container is gone.
	removed chan struct{}
	// restartTimer is the pending restart of a restart policy.
	restartTimer *time.Timer
	// backoff is the delay of the next restart (dockerd's restart manager
	// timeout): it doubles with each restart and starts over after a long
	// run or a start by the user.
	backoff time.Duration
	// noRestart cancels the restart policy for the next exit (docker stop,
	// kill with SIGKILL or the stop signal) until the user starts the
	// container again or the daemon restarts.
	noRestart bool
	execs     map[string]*execProc
	health    *healthMonitor
	// rootfs is the mounted root filesystem while running.
	rootfs string
	// process is the container's OCI process as JSON while running: the
	// base of its execs (see processBase).
	process []byte
	// held is set while the container may hold runtime resources (mounts,
	// sandbox, endpoints, ports): after a successful start, and for every
	// container loaded at daemon start, since a crash may have cut a
	// teardown short. teardown clears it.
	held bool
	// fsUsers counts archive operations (docker cp, export) using the root
	// filesystem of a stopped container, which they mount; the last one
	// unmounts it again unless the container was started meanwhile.
	fsUsers int
}

func newCtr(rec *Record) *ctr {
	c := &ctr{rec: rec, restored: opened, changed: make(chan struct{}), removed: make(chan struct{}), execs: map[string]*execProc{}}
	c.publish()
	return c
}

// notify publishes the record's new state and wakes waiters; call with mu
// held.
func (c *ctr) notify() {
	c.publish()
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *ctr) running() bool {
	s := c.rec.State.Status
	return s == container.StateRunning || s == container.StatePaused
}
