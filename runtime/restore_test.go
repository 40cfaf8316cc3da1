package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Records as a crash of the daemon (or of the host) left them, restored by
// a new Service on the same store: exits found, restart policies applied
// by dockerd's daemon-start rules, cut removals and creates reaped.
func TestRestoreAfterCrash(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	always := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}
	unless := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}}
	onFailure := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}}
	type tc struct {
		hc       *container.HostConfig
		state    State
		stopped  bool // by the user
		count    int
		noRootfs bool
		want     string // status exit-code restart-count
	}
	now := time.Now().UTC()
	running := State{Status: container.StateRunning, Pid: 1, StartedAt: now}
	exited := func(code int) State {
		return State{Status: container.StateExited, ExitCode: code, StartedAt: now, FinishedAt: now}
	}
	cases := map[string]tc{
		"lost-always":     {hc: always, state: running, want: "running 0 0"},
		"lost-no":         {state: running, want: "exited 255 0"},
		"stopped-always":  {hc: always, state: exited(137), stopped: true, count: 4, want: "running 0 0"},
		"stopped-unless":  {hc: unless, state: exited(137), stopped: true, want: "exited 137 0"},
		"crashed-unless":  {hc: unless, state: exited(2), want: "running 0 0"},
		"clean-onfailure": {hc: onFailure, state: exited(0), want: "exited 0 0"},
		"spent-onfailure": {hc: onFailure, state: exited(1), count: 3, want: "exited 1 3"},
		"restarting":      {hc: onFailure, state: State{Status: container.StateRestarting, ExitCode: 1, StartedAt: now, FinishedAt: now}, count: 1, want: "running 0 0"},
		"cut-removal":     {hc: always, state: exited(0), noRootfs: true, want: "dead 0 0"},
	}
	ids := map[string]string{}
	for name, c := range cases {
		hc := c.hc
		if hc == nil {
			hc = &container.HostConfig{}
		}
		id := create(t, h, name, hc, "sleep", "30")
		ids[name] = id
		rec := *h.s.byID[id].rec
		rec.State, rec.ManuallyStopped, rec.RestartCount, rec.HasBeenStarted = c.state, c.stopped, c.count, true
		assert.NilError(t, h.s.table.Put(id, &rec))
		if c.noRootfs {
			assert.NilError(t, h.imgs.RemoveRootfs(ctx, id))
		}
	}
	createdID := create(t, h, "created-always", always, "sleep", "30")
	h.imgs.rootfs[strings.Repeat("0", 64)] = true // a create cut before its record

	s, err := New(h.s.d)
	assert.NilError(t, err)
	t.Cleanup(func() {
		for _, c := range s.all() {
			_ = s.Kill(ctx, c.rec.ID, "")
		}
		_ = s.Close()
	})
	s.Restore(ctx)
	s.AutoStart(ctx)
	for name, c := range cases {
		ins, err := s.Inspect(ctx, ids[name], false)
		assert.NilError(t, err)
		got := string(ins.State.Status) + " " + strconv.Itoa(ins.State.ExitCode) + " " + strconv.Itoa(ins.RestartCount)
		assert.Check(t, is.Equal(got, c.want), name)
	}
	ins, err := s.Inspect(ctx, createdID, false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ins.State.Status, container.StateCreated), "a never-started container was started")
	lost, _ := s.Inspect(ctx, ids["lost-no"], false)
	assert.Check(t, is.Contains(lost.State.Error, "monitor was gone"))
	assert.Check(t, !h.imgs.rootfs[strings.Repeat("0", 64)], "the root filesystem of a cut create is left")
	assert.Check(t, is.Contains(strings.Join(h.ev.actions(ids["lost-no"]), " "), "die"))
}

// restoreFakes are the restorer's dependencies: monitors that answer for
// some state directories, root filesystems, the network layer, the exits
// of gone monitors and the lifecycle, each recording what it was asked.
type restoreFakes struct {
	mu       sync.Mutex
	tasks    map[string]Task // state dir -> the monitor there
	rootfses []RootfsInfo
	calls    []string
	cs       []*ctr
}

func (f *restoreFakes) log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *restoreFakes) Connect(_ context.Context, dir string) (Task, error) {
	if t, ok := f.tasks[dir]; ok {
		return t, nil
	}
	return nil, errdefs.ErrUnavailable
}
func (f *restoreFakes) Rootfses(context.Context) ([]RootfsInfo, error) { return f.rootfses, nil }
func (f *restoreFakes) MountRootfs(_ context.Context, id string) (string, error) {
	f.log("mount %s", f.name(id))
	return "/rootfs/" + id, nil
}
func (f *restoreFakes) UnmountRootfs(_ context.Context, id string) error {
	f.log("unmount %s", f.name(id))
	return nil
}
func (f *restoreFakes) name(id string) string {
	for _, c := range f.cs {
		if c.rec.ID == id {
			return c.rec.Name
		}
	}
	return id
}
func (f *restoreFakes) Restore(_ context.Context, req RestoreRequest) error {
	f.log("network %s", req.ContainerName)
	return nil
}
func (f *restoreFakes) exit(_ context.Context, id string) (ExitStatus, string) {
	return ExitStatus{Code: 3}, ""
}
func (f *restoreFakes) all() []*ctr            { return f.cs }
func (f *restoreFakes) adopt(c *ctr, _ Task)   { f.log("adopt %s", c.rec.Name) }
func (f *restoreFakes) removeCgroup(r *Record) { f.log("cgroup %s", r.Name) }
func (f *restoreFakes) saveLogged(c *ctr)      { f.log("save %s %s", c.rec.Name, c.rec.State.Status) }
func (f *restoreFakes) recordExit(c *ctr, task Task, st ExitStatus, _ bool) {
	_, gone := task.(goneTask)
	f.log("exit %s %d gone=%v", c.rec.Name, st.Code, gone)
}
func (f *restoreFakes) reapRun(_ context.Context, c *ctr) { f.log("reap %s", c.rec.Name) }
func (f *restoreFakes) finishRemoval(_ context.Context, c *ctr) error {
	f.log("remove %s", c.rec.Name)
	return nil
}
func (f *restoreFakes) autoRemove(_ context.Context, c *ctr) error {
	f.log("auto-remove %s", c.rec.Name)
	return nil
}
func (f *restoreFakes) reapOrphans(context.Context, []RootfsInfo) int { return 2 }

// The restorer needs the monitors, the root filesystems, the network
// layer, the exits of gone monitors and the lifecycle: it hands each
// container on by what it finds, and holds every operation on a container
// until that container is restored, and every create or start until the
// phase is over. A running container's root filesystem that is still
// mounted is adopted as it is; one whose mount is gone is mounted again,
// its stale count reset first.
func TestRestorerAlone(t *testing.T) {
	stateDirs := t.TempDir()
	stateDir := func(id string) string { return filepath.Join(stateDirs, id) }
	f := &restoreFakes{tasks: map[string]Task{}}
	ctrs := map[string]*ctr{}
	add := func(name string, st container.ContainerState, rootfs bool) *RootfsInfo {
		id := fmt.Sprintf("%064x", len(ctrs)+1)
		hc := &container.HostConfig{AutoRemove: strings.HasPrefix(name, "rm-")}
		rec := &Record{ID: id, Name: "/" + name, Config: &container.Config{}, HostConfig: hc,
			State: State{Status: st}, SandboxKey: "/run/netns/" + name}
		c := newCtr(rec)
		c.restored = make(chan struct{})
		ctrs[name] = c
		f.cs = append(f.cs, c)
		if !rootfs {
			return nil
		}
		f.rootfses = append(f.rootfses, RootfsInfo{ContainerID: id})
		return &f.rootfses[len(f.rootfses)-1]
	}
	rf := add("live", container.StateRunning, true)
	rf.Mounted, rf.MountPath = true, "/merged/live"
	rf = add("unmounted", container.StateRunning, true) // by hand, while the daemon was down
	rf.Mounted, rf.StaleMount = true, true
	add("gone", container.StateRunning, true)
	add("backoff", container.StateRestarting, true)
	add("removing", container.StateRemoving, true)
	add("stopped", container.StateExited, true)
	add("cut", container.StateExited, true)
	add("rootless", container.StateExited, false)
	add("rm-created", container.StateCreated, true) // --rm containers that do not run go
	add("rm-rootless", container.StateExited, false)
	live := attachTask{greeting: "live"}
	f.tasks[stateDir(ctrs["live"].rec.ID)] = live
	f.tasks[stateDir(ctrs["unmounted"].rec.ID)] = attachTask{greeting: "unmounted"}
	assert.NilError(t, os.MkdirAll(stateDir(ctrs["cut"].rec.ID), 0o700))

	release := make(chan struct{})
	held := make(chan struct{})
	r := newRestorer(f, f, f, f, f, stateDir, func(context.Context) { close(held); <-release })
	done := make(chan map[string]int, 1)
	go func() { done <- r.run(context.Background()) }()
	<-held

	// while the restore is held, nothing is restored and the phase is not over
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, c := range ctrs {
		assert.Check(t, is.ErrorIs(r.waitContainer(cancelled, c), context.Canceled), "%s is open before its restore", name)
	}
	assert.Check(t, is.ErrorIs(r.waitPhase(cancelled), context.Canceled))
	waited := make(chan error, 1)
	go func() { waited <- r.waitContainer(context.Background(), ctrs["live"]) }()
	close(release)
	select {
	case err := <-waited:
		assert.NilError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("an operation waiting for a container's restore was not let through")
	}
	counts := <-done

	assert.Check(t, is.DeepEqual(counts, map[string]int{"running": 2, "exited": 1, "restarting": 1, "removed": 3,
		"stopped": 1, "reaped": 1, "dead": 1, "orphans": 2}))
	for name, c := range ctrs {
		assert.Check(t, r.waitContainer(cancelled, c), "%s is not open after the restore", name)
	}
	// the stale count goes before the new mount adds to it
	unmount, mount := slices.Index(f.calls, "unmount /unmounted"), slices.Index(f.calls, "mount /unmounted")
	assert.Check(t, unmount >= 0 && unmount < mount, "%v", f.calls)
	sort.Strings(f.calls)
	assert.Check(t, is.DeepEqual(f.calls, []string{
		"adopt /live", "adopt /unmounted", "auto-remove /rm-created", "auto-remove /rm-rootless", "cgroup /gone", "cgroup /stopped", "exit /gone 3 gone=true",
		"mount /unmounted", "network live", "network unmounted",
		"reap /backoff", "reap /cut", "reap /rootless", "remove /removing",
		"save /backoff exited", "save /rootless dead", "unmount /unmounted",
	}))
	assert.Check(t, ctrs["live"].task == Task(live))
	assert.Check(t, is.Equal(ctrs["live"].rootfs, "/merged/live"))
	assert.Check(t, is.Equal(ctrs["unmounted"].rootfs, "/rootfs/"+ctrs["unmounted"].rec.ID))
	assert.Check(t, is.Equal(ctrs["rootless"].rec.State.Status, container.StateDead))

	// the phase ends when the lifecycle says so (AutoStart), not before
	assert.Check(t, is.ErrorIs(r.waitPhase(cancelled), context.Canceled))
	r.endPhase()
	assert.Check(t, r.waitPhase(cancelled))
}
