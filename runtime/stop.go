package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

const defaultStopTimeout = 10

// Stop sends the stop signal, waits up to timeout seconds (the container's
// StopTimeout or 10 by default; -1 waits forever), then kills. Stopping a
// container that is not running is ErrNotModified (304).
func (s *Service) Stop(ctx context.Context, name, signal string, timeout *int) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	return s.stop(ctx, c, signal, timeout)
}

func (s *Service) stop(ctx context.Context, c *ctr, signal string, timeout *int) error {
	// as dockerd: a client that hangs up does not cancel the stop
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	rec := c.rec
	if s.cancelRestart(c) {
		rec.ManuallyStopped, c.noRestart = true, true
		s.saveLogged(c)
		c.notify()
		c.mu.Unlock()
		s.event(rec, events.ActionStop, nil)
		return nil
	}
	if !c.running() {
		c.mu.Unlock()
		return errdefs.ErrNotModified.WithMessage("container already stopped")
	}
	if signal == "" {
		signal = rec.Config.StopSignal
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if signal == "" {
		sig = syscall.SIGTERM
	}
	t := defaultStopTimeout
	if rec.Config.StopTimeout != nil {
		t = *rec.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	rec.ManuallyStopped, c.noRestart = true, true
	c.stopping = true
	s.saveLogged(c)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.stopping = false
		c.mu.Unlock()
	}()

	// a paused container is thawed after the signal (see kill)
	if err := s.kill(c, sig); err != nil && !errdefs.IsConflict(err) {
		return err
	}
	if t >= 0 && !s.waitStopped(ctx, c, time.Duration(t)*time.Second) {
		if err := s.kill(c, syscall.SIGKILL); err != nil && !errdefs.IsConflict(err) {
			return err
		}
	}
	if !s.waitStopped(ctx, c, -1) {
		return ctx.Err()
	}
	s.event(rec, events.ActionStop, nil)
	return nil
}

// waitStopped waits until the container is not running; d < 0 waits until
// ctx ends. It reports whether the container stopped.
func (s *Service) waitStopped(ctx context.Context, c *ctr, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		c.mu.Lock()
		running, ch := c.task != nil, c.changed
		c.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Kill sends a signal (name or number; default SIGKILL) to the container's
// main process. A container that is not running is ErrConflict (409).
func (s *Service) Kill(ctx context.Context, name, signal string) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	c.mu.Lock()
	// As dockerd: SIGKILL and the stop signal (any signal when the image
	// sets none) cancel the restart policy for the exit they cause; every
	// kill counts as a stop by the user for unless-stopped.
	cancel := isStopSignal(c.rec, sig)
	if c.rec.State.Status == container.StateRestarting {
		c.rec.ManuallyStopped = true
		if cancel {
			c.noRestart = true
			s.cancelRestart(c)
			c.notify()
		}
		s.saveLogged(c)
		c.mu.Unlock()
		return nil
	}
	if !c.running() {
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: container %s is not running", name, c.rec.ID))
	}
	c.rec.ManuallyStopped = true
	if cancel {
		c.noRestart = true
	}
	s.saveLogged(c)
	c.mu.Unlock()
	if err := s.kill(c, sig); err != nil {
		return err
	}
	if sig == syscall.SIGKILL {
		s.waitStopped(ctx, c, 10*time.Second)
	}
	return nil
}

// kill signals the container's init process through its monitor, which
// holds it as an unreaped child, so a recycled pid is never signalled. As
// dockerd does, SIGKILL or the container's stop signal to a paused
// container thaws it afterwards, so the signal takes effect: a frozen
// process neither handles a signal nor dies of one.
func (s *Service) kill(c *ctr, sig syscall.Signal) error {
	c.mu.Lock()
	task, rec := c.task, c.rec
	unpause := rec.State.Status == container.StatePaused && isStopSignal(rec, sig)
	c.mu.Unlock()
	if task == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", rec.ID))
	}
	s.event(rec, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := task.Kill(context.Background(), sig); err != nil {
		if errdefs.IsConflict(err) {
			return nil // it exited meanwhile
		}
		return fmt.Errorf("kill container %s: %w", rec.ID[:12], err)
	}
	if unpause {
		s.resumeForKill(c)
	}
	return nil
}

// isStopSignal says whether sig ends the container: SIGKILL, its stop
// signal, or any signal when it sets none (dockerd's rule).
func isStopSignal(rec *Record, sig syscall.Signal) bool {
	if sig == syscall.SIGKILL || rec.Config.StopSignal == "" {
		return true
	}
	stopSig, err := ParseSignal(rec.Config.StopSignal)
	return err == nil && stopSig == sig
}

// resumeForKill thaws a paused container that has just been sent its
// stop signal.
func (s *Service) resumeForKill(c *ctr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State.Status != container.StatePaused || c.task == nil {
		return
	}
	if err := s.d.OCI.Resume(context.Background(), c.rec.ID); err != nil {
		logrus.WithError(err).Warnf("unpause container %s to stop it", short(c.rec.ID))
		return
	}
	c.rec.State.Status = container.StateRunning
	s.saveLogged(c)
	c.notify()
	s.event(c.rec, events.ActionUnPause, nil)
}

// ParseSignal reads "SIGKILL", "KILL", "kill" or "9"; "" is SIGKILL.
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGKILL, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if rt, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rt); err == nil && n >= 0 && 34+n <= 64 {
			return syscall.Signal(34 + n), nil
		}
	}
	return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid signal: %s", s))
}

// Restart stops (if running) and starts the container. It outlives the
// request: a client that hangs up does not cut it half-way. An auto-remove
// container is not removed by the exit the restart causes.
func (s *Service) Restart(ctx context.Context, name, signal string, timeout *int) error {
	if err := s.restored(ctx); err != nil {
		return err
	}
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	if c.removing || c.rec.State.Status == container.StateRemoving {
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot restart container %s: removal in progress", c.rec.ID[:12]))
	}
	c.manualRestart = true
	c.mu.Unlock()
	err = s.stop(ctx, c, signal, timeout)
	c.mu.Lock()
	c.manualRestart = false
	if err == nil || errdefs.IsNotModified(err) {
		err = startable(c)
	}
	if err != nil {
		c.mu.Unlock()
		if errdefs.IsNotModified(err) {
			return nil // started meanwhile
		}
		return err
	}
	return s.startByUser(ctx, c, func() { s.event(c.rec, events.ActionRestart, nil) })
}

// Pause freezes the container's processes.
func (s *Service) Pause(ctx context.Context, name string) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.rec.State.Status {
	case container.StatePaused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is already paused", c.rec.ID))
	case container.StateRunning:
	default:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.rec.ID))
	}
	if err := s.d.OCI.Pause(ctx, c.rec.ID); err != nil {
		return err
	}
	c.rec.State.Status = container.StatePaused
	s.saveLogged(c)
	c.notify()
	s.event(c.rec, events.ActionPause, nil)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, name string) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State.Status != container.StatePaused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not paused", c.rec.ID))
	}
	if err := s.d.OCI.Resume(ctx, c.rec.ID); err != nil {
		return err
	}
	c.rec.State.Status = container.StateRunning
	s.saveLogged(c)
	c.notify()
	s.event(c.rec, events.ActionUnPause, nil)
	return nil
}
