package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/runtime/runc"
	"github.com/berthd/berth/runtime/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociRuntime is one OCI runtime containers can run with (--add-runtime,
// daemon.json runtimes, runc always).
type ociRuntime struct {
	Name    string
	Path    string
	Args    []string // global flags (daemon.json runtimeArgs)
	Root    string   // its state directory
	Version string   // first line of `<path> --version`
	// FastExec: the monitor may start execs with berth-nsexec instead of
	// this runtime. Only for a runtime whose `--version` says it is runc
	// 1.1: the fast path reproduces runc 1.1's exec, and was proven
	// equivalent for it only (a binary's name proves nothing).
	FastExec bool
	// Unusable says why the runtime cannot run containers on this host
	// ("" when it can), found at start from its version and the host.
	Unusable string
}

// runtimeSet is every runtime and the default one's name.
type runtimeSet struct {
	byName map[string]*ociRuntime
	def    string
}

// fastExecVersion is what `--version` prints first for the runtimes the
// exec fast path was proven equivalent to.
var fastExecVersion = regexp.MustCompile(`^runc version 1\.1\.\d+`)

// newRuntimeSet builds the runtimes from --add-runtime name=path (and
// daemon.json's runtimeArgs) with dockerd's checks and words; execRoot
// holds their state (runc's in <exec-root>/runc, as always).
func newRuntimeSet(c *config, execRoot string) (*runtimeSet, error) {
	set := &runtimeSet{byName: map[string]*ociRuntime{}, def: c.DefaultRuntime}
	set.byName["runc"] = probe(&ociRuntime{Name: "runc", Path: "runc", Root: filepath.Join(execRoot, "runc")})
	for _, kv := range c.AddRuntimes {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("invalid runtime: %s", kv)
		}
		if name == "runc" || name == "io.containerd.runc.v2" || name == "io.containerd.runtime.v1.linux" {
			return nil, fmt.Errorf("runtime name '%s' is reserved", name)
		}
		if _, dup := set.byName[name]; dup {
			return nil, fmt.Errorf("runtime name '%s' is specified more than once", name)
		}
		set.byName[name] = probe(&ociRuntime{Name: name, Path: path, Args: c.runtimeArgs[name], Root: filepath.Join(execRoot, "runtimes", name)})
	}
	if set.def == "" {
		set.def = "runc"
	}
	if _, ok := set.byName[set.def]; !ok {
		return nil, fmt.Errorf("specified default runtime '%s' does not exist", set.def)
	}
	return set, nil
}

// probe reads the runtime's version; one that cannot run is kept (its
// containers fail to start with its error) but never gets the fast path.
func probe(r *ociRuntime) *ociRuntime {
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

// lookup returns the runtime of that name; ErrInvalidArgument in dockerd's
// words when there is none, or its binary is not there.
func (s *runtimeSet) lookup(name string) (*ociRuntime, error) {
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

// info is /info's Runtimes and DefaultRuntime.
func (s *runtimeSet) info() (map[string]system.RuntimeWithStatus, string) {
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

func (s *runtimeSet) names() []string {
	var out []string
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// runtimesOf lets the container runtime check and default HostConfig.Runtime.
type runtimesOf struct{ l *live }

var _ runtime.Runtimes = runtimesOf{}

func (r runtimesOf) Resolve(name string) (string, error) {
	rt, err := r.l.runtimes.Load().lookup(name)
	if err != nil {
		return "", err
	}
	return rt.Name, nil
}

// shimRuntimes gives the monitors the OCI runtime a container runs with.
type shimRuntimes struct{ l *live }

var _ shim.Runtimes = shimRuntimes{}

func (r shimRuntimes) Lookup(name string) (shim.Runtime, error) {
	rt, err := r.l.runtimes.Load().lookup(name)
	if err != nil {
		return shim.Runtime{}, err
	}
	return shim.Runtime{Path: rt.Path, Root: rt.Root, Args: rt.Args, FastExec: rt.FastExec}, nil
}

// ociCommands runs the runtime commands that need no monitor with the
// runtime that made the container: the one whose state directory has it.
type ociCommands struct{ l *live }

var _ runtime.OCIRuntime = ociCommands{}

func (o ociCommands) pick(id string) *runc.Runtime {
	set := o.l.runtimes.Load()
	for _, r := range set.byName {
		if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
			return runc.New(r.Path, r.Root)
		}
	}
	rc := set.byName["runc"]
	return runc.New(rc.Path, rc.Root)
}

func (o ociCommands) Pause(ctx context.Context, id string) error  { return o.pick(id).Pause(ctx, id) }
func (o ociCommands) Resume(ctx context.Context, id string) error { return o.pick(id).Resume(ctx, id) }
func (o ociCommands) Update(ctx context.Context, id string, r *container.Resources) error {
	return o.pick(id).Update(ctx, id, r)
}
func (o ociCommands) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	return o.pick(id).Kill(ctx, id, sig)
}
func (o ociCommands) Delete(ctx context.Context, id string) error { return o.pick(id).Delete(ctx, id) }
