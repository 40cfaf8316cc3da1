package runtime

import (
	"context"
	"sort"
	"time"

	"github.com/berthd/berth/internal/safepath"
	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// Restore brings the in-memory state back in line with the world after a
// daemon (re)start (see restorer). Each container's operations may go on
// as soon as it is restored; creates and starts wait for AutoStart, which
// ends the restore phase. Call it once, before AutoStart; the API may be
// served meanwhile (see "The restore phase").
func (s *Service) Restore(ctx context.Context) {
	// pins of starts a crash cut (no start runs before the phase is over)
	safepath.ReapPins(s.pinsDir())
	s.restore.run(ctx)
}

// ready finds the container name names for an operation on it: it waits
// until the container is restored. Errors: those of lookup; ctx.Err().
func (s *Service) ready(ctx context.Context, name string) (*ctr, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := s.restore.waitContainer(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// restored waits until the restore phase is over: for what makes new
// runtime state (create, start, connect, prune). Errors: ctx.Err().
func (s *Service) restored(ctx context.Context) error {
	return s.restore.waitPhase(ctx)
}

// autoStartParallel bounds the starts of restart policies at daemon start:
// unlike a reconnect, a start keeps a CPU busy (runc, seccomp).
const autoStartParallel = 8

// AutoStart ends the restore phase, then starts the containers whose
// restart policy asks for it after a daemon start (as dockerd: always, even
// when stopped by the user; unless-stopped unless stopped by the user;
// on-failure after a failure under its max), each with its RestartCount
// reset. Containers that join another's network namespace go after the
// others. Call it after Restore, once the network layer has released what
// nobody restored (RestoreDone): creates and starts of users, which waited
// for the phase's end, run alongside.
func (s *Service) AutoStart(ctx context.Context) {
	s.restore.endPhase()
	var first, then []*ctr
	for _, c := range s.all() {
		c.mu.Lock()
		rec := c.rec
		want := rec.Broken == "" && rec.HasBeenStarted &&
			(rec.State.Status == container.StateExited || rec.State.Status == container.StateCreated) &&
			policyRestarts(rec, rec.ManuallyStopped)
		c.mu.Unlock()
		switch {
		case !want:
		case isContainerMode(string(rec.HostConfig.NetworkMode)):
			then = append(then, c)
		default:
			first = append(first, c)
		}
	}
	if len(first)+len(then) == 0 {
		return
	}
	began := time.Now()
	byCreated := func(cs []*ctr) {
		sort.Slice(cs, func(i, j int) bool { return cs[i].rec.Created.Before(cs[j].rec.Created) })
	}
	byCreated(first)
	byCreated(then)
	start := func(c *ctr) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.running() || c.rec.State.Status == container.StateRestarting || c.removing {
			return
		}
		c.resetRestarts()
		if err := s.startLocked(ctx, c); err != nil {
			logrus.WithError(err).Warnf("start container %s at daemon start", c.rec.ID[:12])
			if restart, d := s.shouldRestart(c); restart {
				s.scheduleRestart(c, d)
				s.saveLogged(c)
				c.notify()
			}
		}
	}
	parallel(autoStartParallel, first, start)
	parallel(autoStartParallel, then, start)
	logrus.Infof("started %d containers by restart policy in %v", len(first)+len(then), time.Since(began).Round(time.Millisecond))
}
