// Package inventory counts what one berthd holds on the host, for leak
// accounting (GET /berth/debug/inventory, the soak run and the fault
// tests): mounts under its roots, network namespaces, bridges, veths,
// iptables rules, held ports, endpoints, DNS records and addresses,
// container cgroups under its cgroup parent, monitor processes, and its
// own open files, goroutines and memory. Everything is looked up when
// asked; nothing is cached.
package inventory

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/berthd/berth/internal/cgroups"
)

// Report is one count. Lists are sorted.
type Report struct {
	Mounts     []string // mount points at or below the data and exec roots
	Netns      []string // network namespace files
	Bridges    []string // bridge devices of the daemon's networks
	Veths      []string // veths on those bridges
	Rules      []string // rules in the daemon's iptables chains and the jumps to them
	Ports      []string // host ports held for published ports
	Endpoints  int      // network endpoints in memory
	DNSRecords int      // embedded DNS records
	Addresses  int      // container addresses allocated in the daemon's subnets
	Cgroups    []string // container cgroups (ids) under the daemon's cgroup parent, any hierarchy
	Monitors   []int    // pids of the monitor processes of the daemon's containers
	Containers Containers
	FDs        int   // the daemon's open file descriptors
	Goroutines int   // the daemon's goroutines
	RSSBytes   int64 // the daemon's resident memory
}

// Containers counts the daemon's containers by state.
type Containers struct {
	Total, Running, Paused, Stopped int
}

// NetworkState is what the network layer holds on the host and in memory.
type NetworkState struct {
	Bridges []string // bridge devices of the daemon's networks that exist
	Veths   []string // veths attached to those bridges
	Netns   []string // files under <exec-root>/netns
	Rules   []string // rules in the daemon's iptables chains and the jumps to them
	Ports   []string // held host ports ("0.0.0.0:8080/tcp")
	// Endpoints, DNSRecords and Addresses count the endpoints in memory,
	// the embedded DNS records and the container addresses allocated in
	// the daemon's subnets.
	Endpoints, DNSRecords, Addresses int
}

// Network is what the inventory asks of the network layer
// (*network.Manager is one).
type Network interface {
	Inventory(ctx context.Context) (*NetworkState, error)
}

// Counter counts containers (*runtime.Service).
type Counter interface {
	Counts() (total, running, paused, stopped int)
}

// Deps is what a Taker needs; all required.
type Deps struct {
	DataRoot     string
	ExecRoot     string
	CgroupParent string
	// MonitorBinary is the base name of the monitor executable (berth-shim).
	MonitorBinary string
	Network       Network
	Containers    Counter
}

// Taker takes inventories.
type Taker struct{ d Deps }

// New checks deps.
func New(d Deps) (*Taker, error) {
	if d.DataRoot == "" || d.ExecRoot == "" || d.CgroupParent == "" || d.MonitorBinary == "" || d.Network == nil || d.Containers == nil {
		return nil, errors.New("inventory: DataRoot, ExecRoot, CgroupParent, MonitorBinary, Network and Containers are required")
	}
	return &Taker{d: d}, nil
}

// Inventory counts what the daemon holds right now.
func (t *Taker) Inventory(ctx context.Context) (*Report, error) {
	inv, err := t.d.Network.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Mounts:     MountsUnder(t.d.DataRoot, t.d.ExecRoot),
		Netns:      nonNil(inv.Netns),
		Bridges:    nonNil(inv.Bridges),
		Veths:      nonNil(inv.Veths),
		Rules:      nonNil(inv.Rules),
		Ports:      nonNil(inv.Ports),
		Endpoints:  inv.Endpoints,
		DNSRecords: inv.DNSRecords,
		Addresses:  inv.Addresses,
		Cgroups:    Cgroups(t.d.CgroupParent),
		Monitors:   Monitors(t.d.MonitorBinary, t.d.ExecRoot),
		FDs:        countDir("/proc/self/fd"),
		Goroutines: goruntime.NumGoroutine(),
		RSSBytes:   RSS(os.Getpid()),
	}
	c := &r.Containers
	c.Total, c.Running, c.Paused, c.Stopped = t.d.Containers.Counts()
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MountsUnder lists the mount points at or below any of dirs.
func MountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{}
	}
	defer f.Close()
	out := []string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		for _, d := range dirs {
			if fields[4] == d || strings.HasPrefix(fields[4], d+"/") {
				out = append(out, fields[4])
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Cgroups lists the container ids with a cgroup under parent in any
// hierarchy (v1 controllers and the unified one).
func Cgroups(parent string) []string {
	parent = strings.Trim(parent, "/")
	seen := map[string]bool{}
	for _, m := range cgroups.Hierarchies() {
		ents, err := os.ReadDir(filepath.Join(m, parent))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 64 {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Monitors lists the pids of live processes running binary (base name)
// whose command line names a path under execRoot.
func Monitors(binary, execRoot string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{}
	}
	out := []int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == binary && strings.Contains(string(b), execRoot+"/") {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// RSS is a process's resident memory in bytes (0 when unknown).
func RSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func countDir(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	return len(ents)
}
