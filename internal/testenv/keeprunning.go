package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/inventory"
)

// Helpers for the keep-running tests: leak accounting, a daemon with its
// own cgroup parent, a simulated host reboot, CPU time.

// OwnCgroupParent returns berthd flags that give a daemon a cgroup parent
// of its own, so counting and killing by cgroup sees only its
// containers. The parent's (empty) directories go at test end.
func OwnCgroupParent(t testing.TB) []string {
	t.Helper()
	parent := fmt.Sprintf("berth-t%d-%d", os.Getpid(), cgroupSeq.Add(1))
	t.Cleanup(func() {
		for _, m := range cgroupHierarchies() {
			_ = syscall.Rmdir(filepath.Join(m, parent))
		}
	})
	return []string{"--cgroup-parent", parent}
}

var cgroupSeq atomic.Int64

// CgroupParent is the daemon's --cgroup-parent (berthd's default "berth").
func (d *Daemon) CgroupParent() string {
	for i, a := range d.Args {
		if a == "--cgroup-parent" && i+1 < len(d.Args) {
			return d.Args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--cgroup-parent="); ok {
			return v
		}
	}
	return "berth"
}

// Inventory asks the daemon what it holds (GET /berth/debug/inventory).
func (d *Daemon) Inventory(t testing.TB) *inventory.Report {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Sock)
		},
	}}
	resp, err := c.Get("http://berthd/berth/debug/inventory")
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("inventory: %s", resp.Status)
	}
	var r inventory.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("inventory: %v", err)
	}
	return &r
}

// Held is the part of an inventory that must come back to its baseline
// when containers go: what they hold on the host. Monitors, cgroups and
// mounts are counted from outside the daemon too (they outlive it).
type Held struct {
	Mounts, Netns, Veths, Rules, Ports, Endpoints, DNSRecords, Addresses, Cgroups, Monitors int
}

// HeldOf reduces a report to its counts.
func HeldOf(r *inventory.Report) Held {
	return Held{
		Mounts: len(r.Mounts), Netns: len(r.Netns), Veths: len(r.Veths), Rules: len(r.Rules), Ports: len(r.Ports),
		Endpoints: r.Endpoints, DNSRecords: r.DNSRecords, Addresses: r.Addresses, Cgroups: len(r.Cgroups), Monitors: len(r.Monitors),
	}
}

// WaitHeld polls the inventory until its counts equal want (what goes
// away, like a veth being deleted or a monitor in its exit grace, takes a
// moment) and returns the last report; the test fails after timeout.
func (d *Daemon) WaitHeld(t testing.TB, want Held, timeout time.Duration) *inventory.Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := d.Inventory(t)
		if HeldOf(r) == want {
			return r
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(r, "", "  ")
			t.Fatalf("daemon holds %+v, want %+v:\n%s", HeldOf(r), want, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SimulateReboot does to the daemon what a host reboot does: berthd dies
// (SIGKILL), every monitor and container process of it is killed by PID,
// mounts under its data and exec roots go, the exec root (a tmpfs on a
// real host) is emptied, and its bridges and iptables chains are removed.
// Images, volumes and the metadata store on the data root stay. Start the
// daemon again afterwards.
func (d *Daemon) SimulateReboot(t testing.TB) {
	t.Helper()
	d.Kill(t)
	for _, pid := range d.ShimPids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	parent := d.CgroupParent()
	for _, m := range cgroupHierarchies() {
		ents, _ := os.ReadDir(filepath.Join(m, parent))
		for _, e := range ents {
			if !e.IsDir() || len(e.Name()) != 64 {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(m, parent, e.Name(), "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	UnmountUnder(d.ExecRoot)
	UnmountUnder(d.DataRoot)
	ents, _ := os.ReadDir(d.ExecRoot)
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(d.ExecRoot, e.Name())); err != nil {
			t.Fatalf("clear exec root: %v", err)
		}
	}
	d.Net.Scrub()
}

// cgroupHierarchies are the host's cgroup mount points.
func cgroupHierarchies() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 && (g[0] == "cgroup" || g[0] == "cgroup2") && f[3] == "/" {
			out = append(out, f[4])
		}
	}
	return out
}

// CPUTime is the user+system CPU time the daemon process has used.
func (d *Daemon) CPUTime(t testing.TB) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	// fields after the command name (which may hold spaces) in parentheses
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// Stop ends the registry now (a test that needs it gone); the cleanup
// registered by StartRegistry then has nothing left to do.
func (r *Registry) Stop(t testing.TB) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = r.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
	}
}
