package runtime

import (
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

func TestPolicyRestarts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  container.RestartPolicy
		code    int
		count   int
		stopped bool
		want    bool
	}{
		{name: "no", policy: container.RestartPolicy{Name: container.RestartPolicyDisabled}, code: 1},
		{name: "always", policy: container.RestartPolicy{Name: container.RestartPolicyAlways}, want: true},
		{name: "always stopped by user", policy: container.RestartPolicy{Name: container.RestartPolicyAlways}, stopped: true, want: true},
		{name: "unless-stopped", policy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, want: true},
		{name: "unless-stopped stopped by user", policy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, stopped: true},
		{name: "on-failure success", policy: container.RestartPolicy{Name: container.RestartPolicyOnFailure}},
		{name: "on-failure failure", policy: container.RestartPolicy{Name: container.RestartPolicyOnFailure}, code: 1, count: 100, want: true},
		{name: "on-failure stopped by user", policy: container.RestartPolicy{Name: container.RestartPolicyOnFailure}, code: 137, stopped: true, want: true},
		{name: "on-failure under max", policy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}, code: 1, count: 1, want: true},
		{name: "on-failure at max", policy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}, code: 1, count: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Record{HostConfig: &container.HostConfig{RestartPolicy: tc.policy}, RestartCount: tc.count, State: State{ExitCode: tc.code}}
			assert.Equal(t, policyRestarts(rec, tc.stopped), tc.want)
		})
	}
}

// The delay doubles from 100 ms to a minute, and a run of 10 s starts it over.
func TestBackoff(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	c := newCtr(&Record{HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}})
	exit := func(ran time.Duration) time.Duration {
		c.rec.State.StartedAt, c.rec.State.FinishedAt = start, start.Add(ran)
		ok, d := h.s.shouldRestart(c)
		assert.Assert(t, ok)
		return d
	}
	var got []time.Duration
	for i := 0; i < 12; i++ {
		got = append(got, exit(time.Millisecond))
	}
	ms := time.Millisecond
	assert.DeepEqual(t, got, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 25600 * ms, 51200 * ms, time.Minute, time.Minute})
	assert.Equal(t, exit(10*time.Second), 100*ms)
	assert.Equal(t, exit(time.Millisecond), 200*ms)

	c.noRestart = true
	ok, _ := h.s.shouldRestart(c)
	assert.Assert(t, !ok, "a stop by the user cancels the restart")
}

// A container between an exit and the restart its policy asked for counts
// as running for rm, as in dockerd: docker-py's
// test_create_with_restart_policy removes one right after its wait.
func TestRemoveRestartingNeedsForce(t *testing.T) {
	h := newHarness(t)
	rec := &Record{ID: "0123456789abcdef0123", Name: "/loop", HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}}
	rec.State.Status = container.StateRestarting
	c := newCtr(rec)
	c.mu.Lock()
	err := h.s.claimRemoval(c, false)
	c.mu.Unlock()
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, `cannot remove container "/loop": container is restarting: stop the container before removing or force remove`)
	assert.Assert(t, !c.removing, "a refused removal claims nothing")

	c.mu.Lock()
	err = h.s.claimRemoval(c, true)
	c.mu.Unlock()
	assert.NilError(t, err)
	assert.Assert(t, c.removing)
}
