package runtime

import (
	"context"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// Restore brings the in-memory state back in line with the world after a
// daemon (re)start: it reconnects to the monitors of containers that kept
// running, records exits that happened while the daemon was down (and
// applies restart policies to them), finishes interrupted removals, and
// restarts containers whose policy asks for it after a host reboot.
func (s *Service) Restore(ctx context.Context) {
	s.mu.RLock()
	all := make([]*ctr, 0, len(s.byID))
	for _, c := range s.byID {
		all = append(all, c)
	}
	s.mu.RUnlock()
	for _, c := range all {
		s.restoreOne(ctx, c)
	}
}

func (s *Service) restoreOne(ctx context.Context, c *ctr) {
	c.mu.Lock()
	rec := c.rec
	if rec.Broken != "" {
		c.mu.Unlock()
		return
	}
	switch rec.State.Status {
	case container.StateRunning, container.StatePaused:
		stateDir := s.stateDir(rec.ID)
		task, err := s.d.Monitors.Connect(ctx, stateDir)
		if err == nil {
			rootfs, err := s.d.Images.MountRootfs(ctx, rec.ID)
			if err != nil {
				logrus.WithError(err).Warnf("restore rootfs of %s", rec.ID[:12])
			}
			c.task, c.rootfs = task, rootfs
			if err := s.restoreNetwork(ctx, c); err != nil {
				logrus.WithError(err).Warnf("restore network of %s", rec.ID[:12])
			}
			s.watch(c, task)
			s.startHealth(c)
			c.mu.Unlock()
			return
		}
		st, ok, rerr := s.d.Monitors.ReadExit(stateDir)
		if rerr != nil || !ok {
			// the monitor is gone without a word: the host rebooted, or it was killed
			st = ExitStatus{Code: 255, ExitedAt: time.Now()}
			if !ok {
				rec.State.Error = "container monitor was gone after daemon restart"
			}
		}
		// handleExit needs the task it is told about to be the current one
		gone := goneTask{}
		c.task = gone
		c.mu.Unlock()
		s.handleExit(c, gone, st)
		c.mu.Lock()
		if rec.State.Status == container.StateExited && wantsBootRestart(rec) {
			rec.State.Status = container.StateRestarting
			s.scheduleRestart(c, backoffStart)
			s.saveLogged(c)
		}
		c.mu.Unlock()
	case container.StateRestarting:
		s.scheduleRestart(c, backoffStart)
		c.mu.Unlock()
	case container.StateRemoving:
		c.mu.Unlock()
		rec.State.Status = container.StateDead
		if err := s.remove(ctx, c, RemoveOptions{Force: true}); err != nil {
			logrus.WithError(err).Warnf("finish removal of %s", rec.ID[:12])
		}
	default:
		c.mu.Unlock()
	}
}

// wantsBootRestart: after the daemon comes back, always and unless-stopped
// containers that the user did not stop are started again, as dockerd does.
func wantsBootRestart(rec *Record) bool {
	switch rec.HostConfig.RestartPolicy.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return !rec.ManuallyStopped
	}
	return false
}

// goneTask stands for a monitor that is no longer there.
type goneTask struct{}

func (goneTask) Pid() int                                              { return 0 }
func (goneTask) Start(context.Context) error                           { return errMonitorGone }
func (goneTask) Kill(context.Context, syscall.Signal) error            { return errMonitorGone }
func (goneTask) Attach(context.Context, Streams) (func() error, error) { return nil, errMonitorGone }
func (goneTask) Resize(context.Context, uint, uint) error              { return errMonitorGone }
func (goneTask) Exec(context.Context, ExecConfig) (ExecTask, error)    { return nil, errMonitorGone }
func (goneTask) Wait(context.Context) (ExitStatus, error)              { return ExitStatus{}, errMonitorGone }
func (goneTask) Close() error                                          { return nil }
