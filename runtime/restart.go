package runtime

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

const (
	backoffStart = 100 * time.Millisecond
	backoffMax   = time.Minute
	// a run this long resets the backoff, like dockerd
	backoffReset = 10 * time.Second
)

// shouldRestart applies the restart policy to an exit; call with c.mu held.
func (s *Service) shouldRestart(c *ctr) (bool, time.Duration) {
	rec := c.rec
	if c.stopping || rec.ManuallyStopped || s.isClosed() || rec.HostConfig.AutoRemove {
		return false, 0
	}
	rp := rec.HostConfig.RestartPolicy
	switch rp.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if rec.State.ExitCode == 0 {
			return false, 0
		}
		if rp.MaximumRetryCount > 0 && rec.RestartCount >= rp.MaximumRetryCount {
			return false, 0
		}
	default:
		return false, 0
	}
	return true, s.backoff(rec)
}

// backoff doubles from 100 ms for each quick restart in a row and starts
// over after a run of 10 s.
func (s *Service) backoff(rec *Record) time.Duration {
	ran := rec.State.FinishedAt.Sub(rec.State.StartedAt)
	if ran >= backoffReset || rec.RestartCount == 0 {
		return backoffStart
	}
	d := backoffStart
	for i := 0; i < rec.RestartCount && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// scheduleRestart starts the container again after delay; call with c.mu held.
func (s *Service) scheduleRestart(c *ctr, delay time.Duration) {
	if c.restartTimer != nil {
		c.restartTimer.Stop()
	}
	s.bg.Add(1)
	c.restartTimer = time.AfterFunc(delay, func() {
		defer s.bg.Done()
		if s.isClosed() {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.restartTimer = nil
		if c.rec.State.Status != container.StateRestarting {
			return
		}
		c.rec.RestartCount++
		s.event(c.rec, events.ActionRestart, nil)
		if err := s.startLocked(context.Background(), c); err != nil {
			logrus.WithError(err).Warnf("restart container %s", c.rec.ID[:12])
			c.rec.State.Status = container.StateExited
			if restart, d := s.shouldRestart(c); restart {
				c.rec.State.Status = container.StateRestarting
				s.scheduleRestart(c, d)
			}
			s.saveLogged(c)
			c.notify()
		}
	})
}

// cancelRestart stops a pending restart; call with c.mu held.
func (s *Service) cancelRestart(c *ctr) bool {
	if c.restartTimer == nil {
		return false
	}
	if c.restartTimer.Stop() {
		s.bg.Done()
	}
	c.restartTimer = nil
	if c.rec.State.Status == container.StateRestarting {
		c.rec.State.Status = container.StateExited
	}
	return true
}
