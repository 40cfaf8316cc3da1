package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/shim/proto"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

// The fakes below stand in for the image, network, volume and monitor
// subsystems. The fake monitor runs the container's command as a plain
// host process, so signals, exits and exit codes are real.

type fakeImages struct {
	mu      sync.Mutex
	rootfs  map[string]bool
	opts    map[string]RootfsOptions // how each root filesystem was made
	mounted map[string]int
	dir     string
	commits []CommitRequest
	// begun are the removals answered early (BeginRemoveRootfs); when
	// holdRemovals is set, they delete once it is closed
	begun        []string
	holdRemovals chan struct{}
}

func (f *fakeImages) Image(ctx context.Context, ref string) (*Image, error) {
	if ref != "busybox" && ref != "busybox:latest" {
		return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return &Image{ID: "sha256:" + strings.Repeat("b", 64), Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}}}, nil
}
func (f *fakeImages) CreateRootfs(ctx context.Context, id, img string, opts RootfsOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rootfs[id] = true
	if f.opts == nil {
		f.opts = map[string]RootfsOptions{}
	}
	f.opts[id] = opts
	return nil
}
func (f *fakeImages) MountRootfs(ctx context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounted[id]++
	return f.dir, nil
}
func (f *fakeImages) UnmountRootfs(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mounted, id)
	return nil
}
func (f *fakeImages) RemoveRootfs(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rootfs, id)
	delete(f.mounted, id)
	return nil
}
func (f *fakeImages) BeginRemoveRootfs(id string) func(context.Context) error {
	f.mu.Lock()
	f.begun = append(f.begun, id)
	hold := f.holdRemovals
	f.mu.Unlock()
	return func(ctx context.Context) error {
		if hold != nil {
			<-hold
		}
		return f.RemoveRootfs(ctx, id)
	}
}
func (f *fakeImages) Rootfses(ctx context.Context) ([]RootfsInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RootfsInfo
	for id := range f.rootfs {
		out = append(out, RootfsInfo{ContainerID: id, Mounted: f.mounted[id] > 0})
	}
	return out, nil
}
func (f *fakeImages) Commit(ctx context.Context, req CommitRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits = append(f.commits, req)
	return "sha256:" + strings.Repeat("c", 64), nil
}

func (f *fakeImages) RootfsSize(ctx context.Context, id string) (int64, int64, error) {
	return 0, 0, nil
}
func (f *fakeImages) RootfsChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	return nil, nil
}

type fakeNetworks struct {
	mu        sync.Mutex
	sandboxes map[string]bool
	attached  map[string]int
	panics    bool // CreateSandbox panics (a bug in a start step)
	// for the attach: it fails on network failOn with failErr, panics on
	// network panicOn, and waits for gate to close when gate is not nil
	failOn, panicOn string
	failErr         error
	gate            chan struct{}
}

func (f *fakeNetworks) CreateSandbox(ctx context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("fake sandbox bug")
	}
	f.sandboxes[id] = true
	return "/fake/netns/" + id, nil
}
func (f *fakeNetworks) DeleteSandbox(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sandboxes, id)
	return nil
}
func (f *fakeNetworks) Attach(ctx context.Context, ns string, req AttachRequest) (*network.EndpointSettings, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.Network {
	case f.failOn:
		return nil, f.failErr
	case f.panicOn:
		panic("fake attach bug")
	}
	f.attached[req.ContainerID]++
	return &network.EndpointSettings{NetworkID: "net-" + req.Network, IPAddress: netip.MustParseAddr("10.210.0.2"), Gateway: netip.MustParseAddr("10.210.0.1")}, nil
}
func (f *fakeNetworks) Detach(ctx context.Context, id, n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attached[id] > 0 {
		f.attached[id]--
	}
	if f.attached[id] == 0 {
		delete(f.attached, id)
	}
	return nil
}
func (f *fakeNetworks) PublishPorts(ctx context.Context, id string, ip netip.Addr, b network.PortMap, all bool, e network.PortSet) (network.PortMap, error) {
	return b, nil
}
func (f *fakeNetworks) UnpublishPorts(ctx context.Context, id string) error   { return nil }
func (f *fakeNetworks) Restore(ctx context.Context, req RestoreRequest) error { return nil }
func (f *fakeNetworks) DNSServer(primary string) netip.Addr {
	return netip.MustParseAddr("10.210.0.1")
}

type fakeSearch struct{}

func (fakeSearch) SearchDomains(labels map[string]string) []string { return []string{"berth.internal"} }
func (f *fakeNetworks) Network(ctx context.Context, n string) (NetworkRef, error) {
	if n == "nosuch" {
		return NetworkRef{}, errdefs.ErrNotFound.WithMessage("network nosuch not found")
	}
	return NetworkRef{ID: "net-" + n, Name: n}, nil
}

type fakeVolumes struct{}

func (fakeVolumes) CreateWithRef(ctx context.Context, req volume.CreateRequest, id string) (*volume.Volume, error) {
	name := req.Name
	if name == "" {
		name = newID()
	}
	return &volume.Volume{Name: name, Mountpoint: "/fake/volumes/" + name}, nil
}
func (fakeVolumes) Mount(ctx context.Context, name, id string) (string, error) {
	return "/fake/volumes/" + name, nil
}
func (fakeVolumes) Unmount(ctx context.Context, name, id string) error        { return nil }
func (fakeVolumes) Remove(ctx context.Context, name string, force bool) error { return nil }
func (fakeVolumes) Ref(ctx context.Context, name, id string) error            { return nil }
func (fakeVolumes) Release(ctx context.Context, name, id string) error        { return nil }
func (fakeVolumes) CopyUp(string, string, *os.File) error                     { return nil }

type fakeMonitors struct {
	mu        sync.Mutex
	tasks     map[string]*fakeTask
	launchErr error         // every Launch fails with it
	launched  chan struct{} // gets a value at each Launch, when not nil
}

func (f *fakeMonitors) Launch(ctx context.Context, cfg MonitorConfig) (Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.launched != nil {
		f.launched <- struct{}{}
	}
	if f.launchErr != nil {
		return nil, f.launchErr
	}
	t := &fakeTask{done: make(chan struct{}), bundle: cfg.Bundle}
	f.tasks[cfg.ID] = t
	return t, nil
}
func (f *fakeMonitors) Prepare(ctx context.Context, dir string, log logdriver.Config) (MonitorPending, error) {
	return &fakePending{f: f, dir: dir}, nil
}

// fakePending is a prepared monitor of fakeMonitors: Launch is theirs.
type fakePending struct {
	f      *fakeMonitors
	dir    string
	closed bool
}

func (p *fakePending) Launch(ctx context.Context, cfg MonitorConfig) (Task, error) {
	if p.closed || cfg.StateDir != p.dir {
		return nil, errdefs.ErrInvalidArgument.WithMessage("fake: launch of a closed or other pending monitor")
	}
	p.closed = true
	return p.f.Launch(ctx, cfg)
}
func (p *fakePending) Close() { p.closed = true }

func (f *fakeMonitors) Connect(ctx context.Context, dir string) (Task, error) {
	return nil, errdefs.ErrNotFound.WithMessage("no monitor")
}
func (f *fakeMonitors) ReadExit(dir string) (ExitStatus, bool, error) {
	return ExitStatus{}, false, nil
}
func (f *fakeMonitors) Stop(ctx context.Context, dir string) error { return nil }

// fakeTask runs the container's args from the generated spec as a host process.
type fakeTask struct {
	bundle string
	cmd    *exec.Cmd
	done   chan struct{}
	status ExitStatus
}

func (t *fakeTask) Pid() int {
	if t.cmd == nil || t.cmd.Process == nil {
		return 0
	}
	return t.cmd.Process.Pid
}
func (t *fakeTask) Start(ctx context.Context) error {
	args, err := specArgs(t.bundle)
	if err != nil {
		return err
	}
	if strings.HasPrefix(args[0], "nosuch") {
		return proto.NewProcessError(fmt.Sprintf("exec: %q: executable file not found in $PATH", args[0]))
	}
	t.cmd = exec.Command(args[0], args[1:]...)
	if err := t.cmd.Start(); err != nil {
		return err
	}
	go func() {
		err := t.cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		}
		t.status = ExitStatus{Code: code, ExitedAt: time.Now()}
		close(t.done)
	}()
	return nil
}
func (t *fakeTask) Kill(ctx context.Context, sig syscall.Signal) error {
	if t.cmd == nil || t.cmd.Process == nil {
		return errdefs.ErrConflict
	}
	select {
	case <-t.done:
		return errdefs.ErrConflict
	default:
	}
	// it may exit between the check and the signal, as the shim's may
	err := t.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return errdefs.ErrConflict
	}
	return err
}
func (t *fakeTask) Attach(ctx context.Context, s Streams) (func() error, error) {
	return func() error { <-t.done; return nil }, nil
}
func (t *fakeTask) Resize(ctx context.Context, h, w uint) error { return nil }
func (t *fakeTask) Exec(ctx context.Context, cfg ExecConfig) (ExecTask, error) {
	return nil, errdefs.ErrNotImplemented
}
func (t *fakeTask) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-t.done:
		return t.status, nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}
func (t *fakeTask) Close() error { return nil }

type fakeOCI struct{}

func (fakeOCI) Pause(ctx context.Context, id string) error                          { return nil }
func (fakeOCI) Resume(ctx context.Context, id string) error                         { return nil }
func (fakeOCI) Update(ctx context.Context, id string, r *container.Resources) error { return nil }
func (fakeOCI) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	return errdefs.ErrNotFound.WithMessage("no container " + id)
}
func (fakeOCI) Delete(ctx context.Context, id string) error { return nil }

type recorder struct {
	mu  sync.Mutex
	got []events.Message
}

func (r *recorder) Publish(m events.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
}

func (r *recorder) actions(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.got {
		if m.Actor.ID == id {
			out = append(out, string(m.Action))
		}
	}
	return out
}

type harness struct {
	s    *Service
	imgs *fakeImages
	nets *fakeNetworks
	mons *fakeMonitors
	ev   *recorder
	db   *store.DB
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir + "/meta.db")
	assert.NilError(t, err)
	h := &harness{
		imgs: &fakeImages{rootfs: map[string]bool{}, mounted: map[string]int{}, dir: t.TempDir()},
		nets: &fakeNetworks{sandboxes: map[string]bool{}, attached: map[string]int{}},
		mons: &fakeMonitors{tasks: map[string]*fakeTask{}},
		ev:   &recorder{}, db: db,
	}
	h.s, err = New(Deps{
		DataRoot: dir + "/data", ExecRoot: dir + "/run", CgroupParent: "berth-test", DB: db,
		Images: h.imgs, Networks: h.nets, Volumes: fakeVolumes{}, Monitors: h.mons,
		OCI: fakeOCI{}, Events: h.ev, Names: NoFallback{}, DNSSearch: fakeSearch{},
	})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = h.s.Close()
		_ = db.Close()
	})
	// nothing to restore: this ends the restore phase
	h.s.Restore(context.Background())
	h.s.AutoStart(context.Background())
	return h
}
