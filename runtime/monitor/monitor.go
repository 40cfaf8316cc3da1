// Package monitor is the seam between the container runtime (package
// runtime) and the per-container monitors that run its containers
// (berth-shim, driven by package runtime/shim): the interfaces the runtime
// consumes and the values that cross them, declared once. It holds no
// behaviour; runtime/shim implements it, runtime's tests fake it.
package monitor

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
)

// ExitStatus is how a container process ended. Code is 128+signal for a
// killed process, as Docker reports it; OOMKilled is set when its memory
// cgroup counted an OOM kill.
type ExitStatus struct {
	Code      int
	ExitedAt  time.Time
	OOMKilled bool
	// LogDropped is how many log entries the logging driver's non-blocking
	// mode dropped over the run.
	LogDropped uint64
}

// ConsoleSize is a terminal's height and width in characters, in the
// order of the API's HostConfig.ConsoleSize. Zero in either: not set.
type ConsoleSize [2]uint

// Set says whether both dimensions are given.
func (s ConsoleSize) Set() bool { return s[0] > 0 && s[1] > 0 }

// Config describes the container a monitor runs.
type Config struct {
	ID       string
	Bundle   string
	StateDir string
	Log      logdriver.Config
	Runtime  string // the OCI runtime's name (HostConfig.Runtime); "": the default
	Terminal bool
	// OpenStdin keeps a stdin attach clients write to; StdinOnce closes it
	// at the end of one client's input.
	OpenStdin   bool
	StdinOnce   bool
	ConsoleSize ConsoleSize // of the Terminal
}

// Monitors launches and finds per-container monitors.
type Monitors interface {
	// Launch creates the container (not started); the error carries the OCI
	// runtime's message when creation fails, and nothing is left behind.
	// ErrInvalidArgument for an unknown or unusable runtime.
	Launch(ctx context.Context, cfg Config) (Task, error)
	// Prepare starts the monitor of stateDir (created if needed) ahead of
	// the container's set-up, so that the monitor's own process start
	// overlaps the caller's mounts and network work; the Pending's Launch
	// then is Launch. log is the container's logging (the monitor's build
	// depends on its driver). A Pending not launched must be closed.
	Prepare(ctx context.Context, stateDir string, log logdriver.Config) (Pending, error)
	// Connect reattaches to the monitor of a container that kept running.
	// ErrNotFound when the container has exited meanwhile (its status is
	// then for ReadExit), ErrUnavailable when no monitor serves stateDir.
	Connect(ctx context.Context, stateDir string) (Task, error)
	// ReadExit reads the exit status a gone monitor left in stateDir; ok is
	// false when there is none.
	ReadExit(stateDir string) (st ExitStatus, ok bool, err error)
	// Stop ends a monitor of stateDir that Connect cannot reach because
	// its launch was cut before it served (berthd stopped mid-create), and
	// what it started, and returns once it has exited. No monitor: nil.
	Stop(ctx context.Context, stateDir string) error
}

// Pending is a monitor started by Prepare, waiting for its container.
type Pending interface {
	// Launch is Monitors.Launch on the started monitor; cfg.StateDir must
	// be the one it was prepared for. It uses the Pending up, failed or not.
	Launch(ctx context.Context, cfg Config) (Task, error)
	// Close ends a monitor that was not launched, leaving nothing; after
	// Launch it does nothing.
	Close()
}

// Streams are the client's ends of an attach or exec.
type Streams struct {
	Stdin          io.Reader // nil: not attached
	Stdout, Stderr io.Writer // nil: not attached
}

// Task is one container's monitor.
type Task interface {
	Pid() int
	Start(ctx context.Context) error
	// Kill signals the container's init process; ErrConflict ("container
	// is not running") when it is not running.
	Kill(ctx context.Context, sig syscall.Signal) error
	// Attach connects streams to the container's stdio. It returns once the
	// monitor has registered them (output produced after that reaches the
	// streams); wait blocks until the output ends or ctx is cancelled.
	Attach(ctx context.Context, s Streams) (wait func() error, err error)
	// Resize sets the size of the container's terminal; a container
	// without one ignores it (as dockerd does).
	Resize(ctx context.Context, height, width uint) error
	Exec(ctx context.Context, cfg ExecConfig) (ExecTask, error)
	// Wait blocks until the container exits.
	Wait(ctx context.Context) (ExitStatus, error)
	// Close ends the monitor: a container still there (a start that failed
	// half-way) is killed and waited for first.
	Close() error
}

// ExecConfig is one process to run in a running container.
type ExecConfig struct {
	ID          string // unique among the container's running execs
	ProcessJSON []byte // a runtime-spec Process
	Terminal    bool
	ConsoleSize ConsoleSize // of the Terminal
	Streams     Streams
}

// ExecTask is a running exec process.
type ExecTask interface {
	Pid() int
	// Resize sets the size of the exec's terminal.
	Resize(ctx context.Context, height, width uint) error
	// Wait returns the exit code once the process ended and its output is drained.
	Wait(ctx context.Context) (int, error)
}
