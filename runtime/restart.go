package runtime

import (
	"context"
	"time"

	"github.com/berthd/berth/internal/safe"
	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// Restart policies, as dockerd's restart manager applies them:
//
//   - on an exit: always restarts; unless-stopped restarts unless the user
//     stopped or killed the container; on-failure restarts a non-zero exit
//     while RestartCount < max (0: no max). docker stop, docker kill with
//     SIGKILL or the stop signal, and rm -f cancel the restart of the exit
//     they cause, whatever the policy.
//   - the delay starts at 100 ms and doubles with every restart, up to a
//     minute; a run of 10 s or more starts it over. RestartCount counts
//     every restart and is reset by a start or restart by the user.
//   - no "restart" event: a restart is a die followed by a start.
//   - at daemon start (AutoStart): containers that have been started before
//     and are not running are started when always (even when the user
//     stopped them), unless-stopped (unless the user stopped them), or
//     on-failure (non-zero exit, under max) says so.
const (
	backoffStart = 100 * time.Millisecond
	backoffMax   = time.Minute
	// a run this long resets the backoff, like dockerd
	backoffReset = 10 * time.Second
)

// shouldRestart applies the restart policy to an exit that has just been
// recorded in the state, and advances the backoff; call with c.mu held.
func (s *Service) shouldRestart(c *ctr) (bool, time.Duration) {
	rec := c.rec
	rp := rec.HostConfig.RestartPolicy
	if rp.Name == "" || rp.Name == container.RestartPolicyDisabled {
		return false, 0
	}
	if rec.State.FinishedAt.Sub(rec.State.StartedAt) >= backoffReset {
		c.backoff = 0
	}
	switch {
	case c.backoff == 0:
		c.backoff = backoffStart
	case c.backoff < backoffMax:
		c.backoff *= 2
	}
	c.backoff = min(c.backoff, backoffMax)
	if c.stopping || c.removing || c.noRestart || s.isClosed() || rec.HostConfig.AutoRemove {
		return false, 0
	}
	return policyRestarts(rec, rec.ManuallyStopped), c.backoff
}

// policyRestarts is the policy's answer for a container that is not
// running, given whether the user's stop counts.
func policyRestarts(rec *Record, manuallyStopped bool) bool {
	rp := rec.HostConfig.RestartPolicy
	switch rp.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !manuallyStopped
	case container.RestartPolicyOnFailure:
		return rec.State.ExitCode != 0 && (rp.MaximumRetryCount == 0 || rec.RestartCount < rp.MaximumRetryCount)
	}
	return false
}

// scheduleRestart counts the restart and starts the container again after
// delay; call with c.mu held.
func (s *Service) scheduleRestart(c *ctr, delay time.Duration) {
	s.cancelTimer(c)
	c.rec.RestartCount++
	c.rec.State.Status = container.StateRestarting
	s.bg.Add(1)
	c.restartTimer = time.AfterFunc(delay, func() {
		defer s.bg.Done()
		defer safe.Recover("restart of container " + short(c.rec.ID))
		if s.isClosed() || s.restored(s.ctx) != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.restartTimer = nil
		if c.rec.State.Status != container.StateRestarting {
			return
		}
		if err := s.startLocked(context.Background(), c); err != nil {
			// startLocked recorded the failure as an exit (126/127/128)
			logrus.WithError(err).Warnf("restart container %s", c.rec.ID[:12])
			if restart, d := s.shouldRestart(c); restart {
				s.scheduleRestart(c, d)
				s.saveLogged(c)
				c.notify()
			}
		}
	})
}

// cancelTimer stops a pending restart timer; call with c.mu held.
func (s *Service) cancelTimer(c *ctr) bool {
	if c.restartTimer == nil {
		return false
	}
	if c.restartTimer.Stop() {
		s.bg.Done()
	}
	c.restartTimer = nil
	return true
}

// cancelRestart stops a pending restart and leaves the container exited;
// call with c.mu held. It reports whether one was pending.
func (s *Service) cancelRestart(c *ctr) bool {
	if !s.cancelTimer(c) {
		return false
	}
	if c.rec.State.Status == container.StateRestarting {
		c.rec.State.Status = container.StateExited
	}
	return true
}

// resetRestarts is what a start by the user does to the restart state.
func (c *ctr) resetRestarts() {
	c.rec.RestartCount = 0
	c.rec.ManuallyStopped = false
	c.backoff = 0
	c.noRestart = false
}
