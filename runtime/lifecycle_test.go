package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

func specArgs(bundle string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return s.Process.Args, nil
}

func create(t *testing.T, h *harness, name string, hc *container.HostConfig, cmd ...string) string {
	t.Helper()
	resp, err := h.s.Create(context.Background(), CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: cmd}, HostConfig: hc})
	assert.NilError(t, err)
	return resp.ID
}

func waitExit(t *testing.T, h *harness, id string) int {
	t.Helper()
	ch, err := h.s.Wait(context.Background(), id, container.WaitConditionNotRunning)
	assert.NilError(t, err)
	select {
	case r := <-ch:
		return r.ExitCode
	case <-time.After(10 * time.Second):
		t.Fatal("container did not exit")
		return -1
	}
}

func TestCreateStartExit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "job", nil, "sh", "-c", "exit 3")
	ins, err := h.s.Inspect(ctx, "job", false)
	assert.NilError(t, err)
	assert.Equal(t, ins.State.Status, container.StateCreated)
	assert.Equal(t, ins.Name, "/job")
	assert.Equal(t, ins.Config.Hostname, id[:12])
	assert.Equal(t, ins.Path, "sh")

	// wait registered before start sees the exit, as `docker run` does it
	next, err := h.s.Wait(ctx, id, container.WaitConditionNextExit)
	assert.NilError(t, err)
	assert.NilError(t, h.s.Start(ctx, id[:8]))
	select {
	case r := <-next:
		assert.Equal(t, r.ExitCode, 3)
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
	ins, err = h.s.Inspect(ctx, id, false)
	assert.NilError(t, err)
	assert.Equal(t, ins.State.Status, container.StateExited)
	assert.Equal(t, ins.State.ExitCode, 3)
	assert.Check(t, is.Len(h.imgs.mounted, 0), "rootfs left mounted")
	assert.Check(t, is.Len(h.nets.sandboxes, 0), "sandbox left")
	assert.Check(t, is.DeepEqual(h.ev.actions(id), []string{"create", "start", "die"}))

	list, err := h.s.List(ctx, ListOptions{All: true, Filters: filters.New([2]string{"exited", "3"})})
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1)
	assert.Check(t, is.Contains(list[0].Status, "Exited (3)"))
}

func TestStopKillsAfterTimeout(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// sh ignores TERM here: stop must fall back to KILL
	ready := filepath.Join(t.TempDir(), "ready")
	id := create(t, h, "stubborn", nil, "sh", "-c", "trap '' TERM; touch "+ready+"; sleep 60")
	assert.NilError(t, h.s.Start(ctx, id))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if _, err := os.Stat(ready); err == nil {
			return poll.Success()
		}
		return poll.Continue("trap not set yet")
	}, poll.WithTimeout(30*time.Second))
	assert.Check(t, errdefs.IsNotModified(h.s.Start(ctx, id)))
	zero := 1
	start := time.Now()
	assert.NilError(t, h.s.Stop(ctx, "stubborn", "", &zero))
	assert.Check(t, time.Since(start) < 8*time.Second)
	ins, _ := h.s.Inspect(ctx, id, false)
	assert.Equal(t, ins.State.ExitCode, 137)
	assert.Check(t, errdefs.IsNotModified(h.s.Stop(ctx, id, "", nil)))
	assert.Check(t, errdefs.IsConflict(h.s.Kill(ctx, id, "")))
}

func TestNamesAndRemove(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "web", nil, "sleep", "30")
	_, err := h.s.Create(ctx, CreateRequest{Name: "web", Config: &container.Config{Image: "busybox"}})
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	_, err = h.s.Create(ctx, CreateRequest{Name: "a", Config: &container.Config{Image: "busybox"}})
	assert.ErrorContains(t, err, "Invalid container name (a)")
	_, err = h.s.Create(ctx, CreateRequest{Config: &container.Config{Image: "nosuch"}})
	assert.Check(t, errdefs.IsNotFound(err))
	_, err = h.s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{NetworkMode: "nosuch"}})
	assert.Check(t, errdefs.IsNotFound(err))

	assert.NilError(t, h.s.Start(ctx, "web"))
	err = h.s.Remove(ctx, "/web", RemoveOptions{})
	assert.Check(t, errdefs.IsConflict(err))
	assert.ErrorContains(t, err, "container is running")
	assert.NilError(t, h.s.Rename(ctx, "web", "web2"))
	_, err = h.s.Inspect(ctx, "web", false)
	assert.Check(t, errdefs.IsNotFound(err))
	assert.ErrorContains(t, err, "No such container: web")
	assert.NilError(t, h.s.Remove(ctx, "web2", RemoveOptions{Force: true}))
	_, err = h.s.Inspect(ctx, id, false)
	assert.Check(t, errdefs.IsNotFound(err))
	assert.Check(t, is.Len(h.imgs.rootfs, 0))
	assert.Check(t, is.Len(h.nets.attached, 0))
}

func TestAutoRemoveAndWaitRemoved(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "", &container.HostConfig{AutoRemove: true}, "sh", "-c", "exit 5")
	ch, err := h.s.Wait(ctx, id, container.WaitConditionRemoved)
	assert.NilError(t, err)
	assert.NilError(t, h.s.Start(ctx, id))
	select {
	case r := <-ch:
		assert.Equal(t, r.ExitCode, 5)
	case <-time.After(10 * time.Second):
		t.Fatal("not removed")
	}
	_, err = h.s.Inspect(ctx, id, false)
	assert.Check(t, errdefs.IsNotFound(err))
}

// A --rm container's end is answered once it is gone from every list and
// its name is free; its root filesystem is deleted after, out of the
// answer's way. A crash in between doubles no name and leaves nothing the
// next start does not remove.
func TestAutoRemoveAnswersBeforeTheLayerGoes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	hold := make(chan struct{})
	h.imgs.mu.Lock()
	h.imgs.holdRemovals = hold
	h.imgs.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // before the harness's Close, which waits for the removal

	old := create(t, h, "job", &container.HostConfig{AutoRemove: true}, "true")
	ch, err := h.s.Wait(ctx, old, container.WaitConditionRemoved)
	assert.NilError(t, err)
	assert.NilError(t, h.s.Start(ctx, old))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the removal was not answered while its root filesystem's deletion waits")
	}
	_, err = h.s.Inspect(ctx, old, false)
	assert.Check(t, errdefs.IsNotFound(err))
	h.imgs.mu.Lock()
	assert.Check(t, is.DeepEqual(h.imgs.begun, []string{old}))
	assert.Check(t, h.imgs.rootfs[old], "the root filesystem went before the answer")
	h.imgs.mu.Unlock()
	_, err = os.Stat(h.s.stateDir(old))
	assert.Check(t, os.IsNotExist(err), "the monitor's state directory is left: %v", err)

	fresh := create(t, h, "job", nil, "true") // the name is free at once
	// a crash now: the records on disk are the new container's alone, and
	// the old root filesystem belongs to nobody, which a start removes
	s2, err := New(h.s.d)
	assert.NilError(t, err)
	defer s2.Close()
	s2.Restore(ctx)
	s2.AutoStart(ctx)
	ins, err := s2.Inspect(ctx, "job", false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ins.ID, fresh))
	_, err = s2.Inspect(ctx, old, false)
	assert.Check(t, errdefs.IsNotFound(err), "the removed container is back after a crash")
	h.imgs.mu.Lock()
	assert.Check(t, !h.imgs.rootfs[old], "the root filesystem of no record is left")
	h.imgs.mu.Unlock()

	release()
	assert.NilError(t, h.s.Close()) // waits for the removal
	_, err = os.Stat(h.s.containerDir(old))
	assert.Check(t, os.IsNotExist(err), "the container's directory is left: %v", err)
	h.imgs.mu.Lock()
	defer h.imgs.mu.Unlock()
	assert.Check(t, is.Len(h.imgs.rootfs, 1)) // fresh's
	assert.Check(t, is.Len(h.imgs.mounted, 0))
}

func TestStartFailureIsRecordedAndCleanedUp(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "bad", nil, "nosuchcmd")
	err := h.s.Start(ctx, id)
	assert.ErrorContains(t, err, "executable file not found")
	ins, _ := h.s.Inspect(ctx, id, false)
	assert.Equal(t, ins.State.ExitCode, 127)
	assert.Equal(t, ins.State.Status, container.StateCreated)
	assert.Check(t, is.Len(h.imgs.mounted, 0))
	assert.Check(t, is.Len(h.nets.sandboxes, 0))
}

func TestRestartPolicyOnFailure(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "flaky", &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}}, "sh", "-c", "exit 1")
	assert.NilError(t, h.s.Start(ctx, id))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		ins, _ := h.s.Inspect(ctx, id, false)
		if ins.RestartCount == 2 && ins.State.Status == container.StateExited {
			return poll.Success()
		}
		return poll.Continue("restart count %d status %s", ins.RestartCount, ins.State.Status)
	}, poll.WithTimeout(30*time.Second))
	ins, _ := h.s.Inspect(ctx, id, false)
	assert.Equal(t, ins.State.ExitCode, 1)
}

func TestRecordsSurviveReload(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "keep", nil, "true")
	s2, err := New(h.s.d)
	assert.NilError(t, err)
	ins, err := s2.Inspect(ctx, "keep", false)
	assert.NilError(t, err)
	assert.Equal(t, ins.ID, id)
}

func TestValidation(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name string
		hc   container.HostConfig
		want string
	}{
		{"bad policy", container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, "invalid restart policy"},
		{"retries without on-failure", container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: 2}}, "maximum retry count can only be used with 'on-failure'"},
		{"autoremove with policy", container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, "can't create 'AutoRemove' container with restart policy"},
		{"negative memory", container.HostConfig{Resources: container.Resources{Memory: -1}}, "memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc := tc.hc
			_, err := h.s.Create(context.Background(), CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &hc})
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestStatusString(t *testing.T) {
	now := time.Now()
	cases := []struct {
		st   State
		want string
	}{
		{State{Status: container.StateCreated}, "Created"},
		{State{Status: container.StateRunning, StartedAt: now.Add(-3 * time.Second)}, "Up 3 seconds"},
		{State{Status: container.StateRunning, StartedAt: now.Add(-90 * time.Minute), Health: &container.Health{Status: container.Healthy}}, "Up 2 hours (healthy)"},
		{State{Status: container.StatePaused, StartedAt: now.Add(-time.Minute)}, "Up About a minute (Paused)"},
		{State{Status: container.StateExited, ExitCode: 3, FinishedAt: now.Add(-2 * time.Second)}, "Exited (3) 2 seconds ago"},
	}
	for _, tc := range cases {
		assert.Equal(t, statusString(&Record{State: tc.st}, now), tc.want)
	}
}

func TestFailedStartOfAutoRemoveContainerRemovesIt(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := create(t, h, "", &container.HostConfig{AutoRemove: true}, "nosuchcmd")
	ch, err := h.s.Wait(ctx, id, container.WaitConditionRemoved)
	assert.NilError(t, err)
	assert.ErrorContains(t, h.s.Start(ctx, id), "executable file not found")
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("a --rm container whose start failed was not removed")
	}
	_, err = h.s.Inspect(ctx, id, false)
	assert.Check(t, errdefs.IsNotFound(err))
}

func TestOldClientsCannotCreateWithSeveralNetworks(t *testing.T) {
	h := newHarness(t)
	_, err := h.s.Create(context.Background(), CreateRequest{
		Config:             &container.Config{Image: "busybox"},
		HostConfig:         &container.HostConfig{NetworkMode: "front"},
		NetworkingConfig:   &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"front": {}, "back": {}}},
		DefaultNetworkOnly: true,
	})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.ErrorContains(t, err, "Container cannot be connected to network endpoints: back, front")
}
