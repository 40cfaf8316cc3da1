package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// createOn creates a container on the networks front (its primary) and
// back.
func createOn(t *testing.T, h *harness, name string) string {
	t.Helper()
	resp, err := h.s.Create(context.Background(), CreateRequest{
		Name:             name,
		Config:           &container.Config{Image: "busybox", Cmd: []string{"sleep", "100"}},
		HostConfig:       &container.HostConfig{NetworkMode: "front"},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"front": {}, "back": {}}},
	})
	assert.NilError(t, err)
	return resp.ID
}

// The networks are attached while the OCI runtime creates the container
// (the monitor's launch does not wait for them), and the container's
// /etc/hosts names its address once the start is over.
func TestNetworkAttachOverlapsTheCreate(t *testing.T) {
	h := newHarness(t)
	id := createOn(t, h, "web")
	gate := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)
	h.nets.gate = gate
	h.mons.launched = make(chan struct{}, 4)
	started := make(chan error, 1)
	go func() { started <- h.s.Start(context.Background(), id) }()
	select {
	case <-h.mons.launched:
	case err := <-started:
		t.Fatalf("the start ended before its launch: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the monitor was not launched while the networks were being attached")
	}
	release()
	assert.NilError(t, <-started)
	t.Cleanup(func() { _ = h.s.Remove(context.Background(), id, RemoveOptions{Force: true}) })
	hosts, err := os.ReadFile(filepath.Join(h.s.containerDir(id), "hosts"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(hosts), "10.210.0.2\t"), "the container's address in its /etc/hosts")
	ins, err := h.s.Inspect(context.Background(), id, false)
	assert.NilError(t, err)
	assert.Check(t, is.Len(ins.NetworkSettings.Networks, 2))
	assert.Check(t, is.Equal(ins.NetworkSettings.Networks["front"].IPAddress.String(), "10.210.0.2"))
}

// An attach that fails fails the start with its error, and everything the
// start made is undone: the network attached before it, the namespace, the
// root filesystem's mount; a second start meets the same error.
func TestFailedAttachUndoesTheStart(t *testing.T) {
	h := newHarness(t)
	id := createOn(t, h, "web")
	h.nets.failOn, h.nets.failErr = "back", errdefs.ErrConflict.WithMessage("Address already in use")
	for i := 0; i < 2; i++ {
		err := h.s.Start(context.Background(), id)
		assert.Check(t, is.ErrorContains(err, "Address already in use"))
		assert.Check(t, errdefs.IsConflict(err))
		assertStartUndone(t, h, id)
	}
	ins, err := h.s.Inspect(context.Background(), id, false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ins.State.Status, container.StateCreated))
	assert.Check(t, is.Contains(ins.State.Error, "Address already in use"))
}

// When the network and the OCI runtime's create both fail, the network's
// failure is the one told, as from dockerd (it sets the network up first).
func TestNetworkFailureToldBeforeTheCreate(t *testing.T) {
	h := newHarness(t)
	id := createOn(t, h, "web")
	h.nets.failOn, h.nets.failErr = "front", errors.New("no addresses left in network front")
	h.mons.launchErr = errors.New("runc create failed")
	err := h.s.Start(context.Background(), id)
	assert.Check(t, is.ErrorContains(err, "no addresses left"))
	assertStartUndone(t, h, id)
}

// A bug in the network's set-up fails the start like any failure: undone,
// and the container stays usable.
func TestAttachPanicFailsTheStart(t *testing.T) {
	h := newHarness(t)
	id := createOn(t, h, "web")
	h.nets.panicOn = "back"
	err := h.s.Start(context.Background(), id)
	assert.Check(t, is.ErrorContains(err, "internal error attaching container"))
	assertStartUndone(t, h, id)
	h.nets.panicOn = ""
	assert.NilError(t, h.s.Start(context.Background(), id))
	assert.NilError(t, h.s.Remove(context.Background(), id, RemoveOptions{Force: true}))
}

func assertStartUndone(t *testing.T, h *harness, id string) {
	t.Helper()
	h.nets.mu.Lock()
	attached, sandbox := h.nets.attached[id], h.nets.sandboxes[id]
	h.nets.mu.Unlock()
	assert.Check(t, is.Equal(attached, 0), "endpoints left")
	assert.Check(t, !sandbox, "network namespace left")
	h.imgs.mu.Lock()
	assert.Check(t, is.Equal(h.imgs.mounted[id], 0), "root filesystem left mounted")
	h.imgs.mu.Unlock()
	_, err := os.Stat(h.s.stateDir(id))
	assert.Check(t, os.IsNotExist(err), "state dir left: %v", err)
}
