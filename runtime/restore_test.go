package runtime

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

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
