package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand"
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

	"github.com/berthd/berth/internal/cgroups"
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
		for _, m := range cgroups.Hierarchies() {
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
		DisableKeepAlives: true, // a connection left open would count in the fds and goroutines
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
	for _, m := range cgroups.Hierarchies() {
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

// BigImageArchive writes a docker-archive of an image (tag) with layers
// layers of size bytes of incompressible data each, so that pulling it
// from a local registry takes long enough to be interrupted. It returns
// the path and the image ID. The data comes from seed: the same seed gives
// the same image.
func BigImageArchive(t testing.TB, tag string, layers int, size int64, seed int64) (string, string) {
	t.Helper()
	rnd := mrand.New(mrand.NewSource(seed))
	path := filepath.Join(t.TempDir(), "big.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	var diffIDs, names []string
	for i := 0; i < layers; i++ {
		var lb bytes.Buffer
		lw := tar.NewWriter(&lb)
		data := make([]byte, size)
		rnd.Read(data)
		_ = lw.WriteHeader(&tar.Header{Name: fmt.Sprintf("big/%d.bin", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)})
		_, _ = lw.Write(data)
		_ = lw.Close()
		sum := sha256.Sum256(lb.Bytes())
		d := hex.EncodeToString(sum[:])
		diffIDs = append(diffIDs, "sha256:"+d)
		names = append(names, d+"/layer.tar")
		put(d+"/layer.tar", lb.Bytes())
	}
	history := make([]map[string]string, layers)
	for i := range history {
		history[i] = map[string]string{"created": "1970-01-01T00:00:00Z", "created_by": fmt.Sprintf("layer %d of %d (seed %d)", i+1, layers, seed)}
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
		"config": map[string]any{"Cmd": []string{"sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}, "history": history,
	})
	sum := sha256.Sum256(cfg)
	cfgID := hex.EncodeToString(sum[:])
	put(cfgID+".json", cfg)
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgID + ".json", "RepoTags": []string{tag}, "Layers": names}})
	put("manifest.json", manifest)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path, "sha256:" + cfgID
}

// StorageState is what the daemon's layer store holds, read from its files
// (for a stopped daemon, or one with no pull or create in flight).
type StorageState struct {
	Layers, Images, Containers int
	// Unreferenced are layers neither an image nor a container uses.
	Unreferenced []string
	// LayerDirs are the overlay driver's layer directories.
	LayerDirs int
}

// SettleRemovals returns once every removal the daemon answered before it
// was done (a --rm container's end: its root filesystem goes after the
// answer, registry/rootfsremoval.go) has ended: `docker system df` counts
// each image's containers, which waits for them.
func (d *Daemon) SettleRemovals(t testing.TB) {
	t.Helper()
	d.DockerOK(t, "system", "df")
}

// Storage reads the daemon's layer store.
func (d *Daemon) Storage(t testing.TB) StorageState {
	t.Helper()
	root := filepath.Join(d.DataRoot, "storage")
	var layers []struct{ ID, Parent string }
	var images []struct {
		ID     string
		Layer  string   `json:"layer"`
		Mapped []string `json:"mapped-layers"`
	}
	var ctrs []struct {
		ID    string
		Layer string `json:"layer"`
	}
	read := func(file string, v any) {
		b, err := os.ReadFile(filepath.Join(root, file))
		if os.IsNotExist(err) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	read("overlay-layers/layers.json", &layers)
	var volatile []struct{ ID, Parent string }
	read("overlay-layers/volatile-layers.json", &volatile)
	layers = append(layers, volatile...)
	read("overlay-images/images.json", &images)
	read("overlay-containers/containers.json", &ctrs)
	// a --rm container's root filesystem is volatile (registry/rootfs.go)
	var volatileCtrs []struct {
		ID    string
		Layer string `json:"layer"`
	}
	read("overlay-containers/volatile-containers.json", &volatileCtrs)
	ctrs = append(ctrs, volatileCtrs...)
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	for _, img := range images {
		mark(img.Layer)
		for _, m := range img.Mapped {
			mark(m)
		}
	}
	for _, c := range ctrs {
		mark(c.Layer)
	}
	st := StorageState{Layers: len(layers), Images: len(images), Containers: len(ctrs), Unreferenced: []string{}}
	for _, l := range layers {
		if !used[l.ID] {
			st.Unreferenced = append(st.Unreferenced, l.ID)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "overlay"))
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 64 {
			st.LayerDirs++
		}
	}
	return st
}
