// Package proto is the wire protocol between berthd (package runtime/shim)
// and berth-shim. It is imported by the shim binary, so it depends on the
// standard library, berth's small log packages and containerd/errdefs only.
//
// One request per connection on <state>/shim.sock: the client writes a
// Request as one JSON line, the shim answers with a Response as one JSON
// line. Attach and Exec then carry streams on the same connection: the shim
// sends frames (an 8-byte header [type, 0, 0, 0, big-endian uint32 length]
// and the payload, the layout of Docker's stdcopy), the client sends raw stdin
// bytes and half-closes its side (shutdown SHUT_WR) for end of input.
package proto

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
)

// DaemonEnv is set (to 1) in the environment of a shim that runs as the
// monitor itself; without it the shim forks itself into a new session first
// (berthd sets it and starts the shim in its own session).
const DaemonEnv = "_BERTH_SHIM_DAEMON"

// HoldEnv is set (to 1) in the environment of a shim started ahead of its
// container's set-up (runtime/shim Spawn), so that its own start overlaps
// berthd's mounts and network work: such a shim waits on HoldFD before it
// reads its Config. One byte: the Config is written, go on. EOF (berthd
// closed its end or is gone): the start was given up, exit having made
// nothing.
const HoldEnv = "_BERTH_SHIM_HOLD"

// HoldFD is the descriptor a held shim waits on (0-2 stdio, 3 the ready
// pipe).
const HoldFD = 4

// Version is the protocol version; a shim answers a request of another
// version with KindInvalid.
const Version = 1

// Ops.
const (
	OpState   = "state"   // -> Response{Pid, Status, Exit}
	OpStart   = "start"   // runc start
	OpAttach  = "attach"  // then frames; stdin from the client
	OpResize  = "resize"  // Height, Width; ExecID selects an exec's pty
	OpKill    = "kill"    // Signal, to the init process
	OpExec    = "exec"    // -> Response{Pid}, then frames and a FrameExit
	OpWait    = "wait"    // blocks until the container exited -> Response{Exit}
	OpRelease = "release" // the container exited and berthd has its status: the shim may exit now
)

// Frame types, shim to client. Stdout and Stderr match stdcopy's stream ids.
const (
	FrameStdout = 1
	FrameStderr = 2
	FrameExit   = 3 // payload: the exec's exit code as a decimal string
)

// Error kinds, mapped to errdefs classes by the client.
const (
	KindNotFound    = "notfound"
	KindConflict    = "conflict"
	KindInvalid     = "invalid"
	KindUnavailable = "unavailable"
	KindProcess     = "process" // the OCI runtime failed to start a process; see ExitCode
)

// Status values.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// Request is the first line a client sends.
type Request struct {
	V  int
	Op string

	Stdin, Stdout, Stderr bool `json:",omitempty"` // attach, exec

	Height, Width uint16 `json:",omitempty"` // resize; exec's initial console size

	ExecID   string          `json:",omitempty"` // exec, resize
	Process  json.RawMessage `json:",omitempty"` // exec: runtime-spec Process JSON
	Terminal bool            `json:",omitempty"` // exec
	// RuntimeExec starts the exec with the OCI runtime even where the
	// shim's own path (berth-nsexec) could: for comparisons.
	RuntimeExec bool `json:",omitempty"`

	Signal int `json:",omitempty"` // kill
}

// Response is the first line the shim sends back.
type Response struct {
	Error    string `json:",omitempty"`
	Kind     string `json:",omitempty"`
	ExitCode int    `json:",omitempty"` // KindProcess: 126, 127 or 128, as dockerd sets them
	Pid      int    `json:",omitempty"`
	ShimPid  int    `json:",omitempty"` // state
	Status   string `json:",omitempty"`
	Exit     *Exit  `json:",omitempty"`
	Direct   bool   `json:",omitempty"` // exec: started by berth-nsexec, not the OCI runtime
	// LogDropped is how many log entries the non-blocking mode dropped
	// (state).
	LogDropped uint64 `json:",omitempty"`
}

// Exit is a container's exit status, also stored as <state>/exit.json.
type Exit struct {
	ExitCode   int
	ExitedAt   time.Time
	OOMKilled  bool
	LogDropped uint64 `json:",omitempty"` // log entries the non-blocking mode dropped
}

// Ready is what the shim writes on fd 3 once the container is created (Pid)
// or could not be (Error, ExitCode).
type Ready struct {
	Pid      int    `json:",omitempty"`
	ShimPid  int    `json:",omitempty"`
	Error    string `json:",omitempty"`
	ExitCode int    `json:",omitempty"`
}

// Config is <state>/shim.json, written by berthd before it starts the shim.
type Config struct {
	ID          string
	Bundle      string
	LogPath     string
	LogRotation logfile.Rotation
	LogAttrs    map[string]string `json:",omitempty"`
	// Log, when set, replaces LogPath, LogRotation and LogAttrs (which
	// mean json-file) with any logging driver.
	Log           *logdriver.Config `json:",omitempty"`
	RuntimeBinary string
	RuntimeRoot   string   `json:",omitempty"`
	RuntimeArgs   []string `json:",omitempty"` // more global runtime flags
	// FastExec allows execs through berth-nsexec: berthd sets it for a
	// runtime whose version the fast path was proven equivalent to.
	FastExec      bool   `json:",omitempty"`
	Terminal      bool   `json:",omitempty"`
	OpenStdin     bool   `json:",omitempty"`
	StdinOnce     bool   `json:",omitempty"`
	ConsoleHeight uint16 `json:",omitempty"`
	ConsoleWidth  uint16 `json:",omitempty"`
	// ExitGrace is how long a shim whose container exited waits for an
	// OpRelease before it exits on its own.
	ExitGrace time.Duration `json:",omitempty"`
}

// Files in the state directory.
const (
	ConfigFile = "shim.json"
	SocketFile = "shim.sock"
	ExitFile   = "exit.json"
	PidFile    = "init.pid"
	ShimLog    = "shim.log"
)

// MaxSocketPath is the longest path a unix socket may have (sun_path, less NUL).
const MaxSocketPath = 107

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, p []byte) error {
	var h [8]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// AppendFrame appends one frame to dst (one write for header and payload).
func AppendFrame(dst []byte, typ byte, p []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(p)))
	return append(dst, p...)
}

// PutFrameHeader writes a frame header into h[:8].
func PutFrameHeader(h []byte, typ byte, n int) {
	h[0], h[1], h[2], h[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint32(h[4:8], uint32(n))
}

// ReadFrameHeader reads a frame header and returns its type and length.
func ReadFrameHeader(r io.Reader) (byte, int, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, err
	}
	return h[0], int(binary.BigEndian.Uint32(h[4:])), nil
}

// ProcessError is the OCI runtime's refusal to start a process (a
// container's init or an exec): Message is the runtime's text verbatim, e.g.
// `exec: "nosuchcmd": executable file not found in $PATH`, and ExitCode the
// code dockerd gives such a process, decided once by ExitCodeFor in the shim
// and carried as it is (Response.ExitCode, Ready.ExitCode). berthd reads the
// code from this type (errors.As), never from error text.
type ProcessError struct {
	Message  string
	ExitCode int
}

// NewProcessError classifies the runtime's message.
func NewProcessError(msg string) *ProcessError {
	return &ProcessError{Message: msg, ExitCode: ExitCodeFor(msg)}
}

func (e *ProcessError) Error() string { return e.Message }

// Unwrap gives the errdefs class: a command that is missing or cannot be
// executed is the caller's mistake (ErrInvalidArgument); anything else the
// runtime refused is ErrUnknown.
func (e *ProcessError) Unwrap() error {
	if e.ExitCode == 126 || e.ExitCode == 127 {
		return errdefs.ErrInvalidArgument
	}
	return errdefs.ErrUnknown
}

// ExitCodeFor classifies the OCI runtime's error text for a process that
// could not be started, as dockerd does: 127 when the executable or a path
// does not exist, 126 when it cannot be executed, 128 otherwise. The runtime
// reports only text, so this is the one place that reads it.
func ExitCodeFor(msg string) int {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "executable file not found"),
		strings.Contains(m, "no such file or directory"),
		strings.Contains(m, "not a directory"):
		return 127
	case strings.Contains(m, "permission denied"),
		strings.Contains(m, "exec format error"),
		strings.Contains(m, "is a directory"):
		return 126
	}
	return 128
}
