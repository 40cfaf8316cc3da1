// Package ociruntime knows the OCI runtimes berthd runs containers with
// (runc always, --add-runtime and daemon.json's runtimes): each one's
// binary, flags and state directory, whether this host can use it, and
// whether the monitor's exec fast path was proven equivalent to it. A Live
// set serves the monitors (shim.Runtimes), the container runtime
// (runtime.Runtimes, runtime.OCIRuntime) and /info, and is swapped whole
// when the daemon's configuration is reloaded.
package ociruntime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/berthd/berth/runtime/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/system"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is one OCI runtime containers can run with: what a monitor
// needs to run it (shim.Runtime: path, root, global flags, and whether execs
// may take the fast path), and what the daemon knows of it besides.
type Runtime struct {
	Name string
	// shim.Runtime's FastExec: the monitor may start execs with
	// berth-nsexec instead of this runtime. Only for a runtime whose
	// `--version` says it is runc 1.1: the fast path reproduces runc 1.1's
	// exec, and was proven equivalent for it only (a binary's name proves
	// nothing). Args are daemon.json's runtimeArgs.
	shim.Runtime
	Version string // first line of `<path> --version`
	// Unusable says why the runtime cannot run containers on this host
	// ("" when it can), found at start from its version and the host.
	Unusable string
}

// Config is what the daemon's configuration says of its runtimes.
type Config struct {
	Default  string              // --default-runtime; "": runc
	Add      []string            // --add-runtime name=path
	Args     map[string][]string // daemon.json runtimeArgs, by name
	ExecRoot string              // runc's state is in <ExecRoot>/runc, the others' in <ExecRoot>/runtimes/<name>
}

// Set is every runtime and the default one's name.
type Set struct {
	byName map[string]*Runtime
	def    string
}

// fastExecVersion is what `--version` prints first for the runtimes the
// exec fast path was proven equivalent to.
var fastExecVersion = regexp.MustCompile(`^runc version 1\.1\.\d+`)

// NewSet builds the runtimes of c with dockerd's checks and words, probing
// each binary for its version. ErrInvalidArgument for a bad configuration.
func NewSet(c Config) (*Set, error) {
	set := &Set{byName: map[string]*Runtime{}, def: c.Default}
	set.byName["runc"] = probe(&Runtime{Name: "runc", Runtime: shim.Runtime{Path: "runc", Root: filepath.Join(c.ExecRoot, "runc")}})
	for _, kv := range c.Add {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid runtime: " + kv)
		}
		if name == "runc" || name == "io.containerd.runc.v2" || name == "io.containerd.runtime.v1.linux" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("runtime name '%s' is reserved", name))
		}
		if _, dup := set.byName[name]; dup {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("runtime name '%s' is specified more than once", name))
		}
		set.byName[name] = probe(&Runtime{Name: name, Runtime: shim.Runtime{Path: path, Args: c.Args[name], Root: filepath.Join(c.ExecRoot, "runtimes", name)}})
	}
	if set.def == "" {
		set.def = "runc"
	}
	if _, ok := set.byName[set.def]; !ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("specified default runtime '%s' does not exist", set.def))
	}
	return set, nil
}

// probe reads the runtime's version; one that cannot run is kept (its
// containers fail to start with its error) but never gets the fast path.
func probe(r *Runtime) *Runtime {
	out, err := exec.Command(r.Path, "--version").Output()
	if err == nil {
		r.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		r.FastExec = fastExecVersion.MatchString(r.Version)
		r.Unusable = crunUnusable(r.Version, hybridCgroups())
	}
	return r
}

var crunVersion = regexp.MustCompile(`^crun version (\d+)\.(\d+)(?:\.(\d+))?`)

// crunUnusable says why a crun of that version cannot run berth's
// containers here: crun refuses hybrid cgroups (v1 controllers with
// controllers on the v2 hierarchy too), and crun before 1.14.3 refuses
// OCI runtime spec versions after 1.1, which berth writes (1.3.0).
func crunUnusable(version, hybrid string) string {
	m := crunVersion.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	if hybrid != "" {
		return "crun does not support this host's hybrid cgroups (cgroup v1, with the " + hybrid + " controllers on the cgroup v2 hierarchy)"
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	if major < 1 || major == 1 && (minor < 14 || minor == 14 && patch < 3) {
		return version + " cannot read OCI runtime spec " + specs.Version + " (crun reads it from 1.14.3 on)"
	}
	return ""
}

// hybridCgroups names the controllers enabled on the cgroup v2 hierarchy
// of a host whose containers use cgroup v1 ("" otherwise).
func hybridCgroups() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == 0x63677270 { // cgroup2: unified
		return ""
	}
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Lookup returns the runtime of that name ("": the default);
// ErrInvalidArgument in dockerd's words when there is none, its binary is
// not there, or it cannot run containers on this host.
func (s *Set) Lookup(name string) (*Runtime, error) {
	if name == "" {
		name = s.def
	}
	r, ok := s.byName[name]
	if !ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("unknown or invalid runtime name: " + name)
	}
	if _, err := exec.LookPath(r.Path); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("runtime %s: %v", name, err))
	}
	if r.Unusable != "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("runtime %s cannot run containers on this host: %s", name, r.Unusable))
	}
	return r, nil
}

// Info is /info's Runtimes and DefaultRuntime.
func (s *Set) Info() (map[string]system.RuntimeWithStatus, string) {
	out := map[string]system.RuntimeWithStatus{}
	for name, r := range s.byName {
		rs := system.RuntimeWithStatus{Runtime: system.Runtime{Path: r.Path, Args: r.Args}}
		if r.Unusable != "" {
			rs.Status = map[string]string{"berth.unusable": r.Unusable}
		}
		out[name] = rs
	}
	return out, s.def
}

// Names are the runtimes' names, sorted.
func (s *Set) Names() []string {
	var out []string
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Default is the default runtime's name.
func (s *Set) Default() string { return s.def }

// holding returns the runtime whose state directory has container id:
// the one that made it (runc when none has).
func (s *Set) holding(id string) *Runtime {
	for _, r := range s.byName {
		if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
			return r
		}
	}
	return s.byName["runc"]
}
