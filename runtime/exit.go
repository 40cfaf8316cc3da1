package runtime

import (
	"context"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// handleExit records a container's exit, tears down what it held while
// running, and applies the restart policy or --rm.
func (s *Service) handleExit(c *ctr, task Task, st ExitStatus) {
	s.recordExit(c, task, st, true)
}

// recordExit is handleExit; without policy the restart policy is left to
// AutoStart (exits found at daemon start restart by its rules, as dockerd's).
func (s *Service) recordExit(c *ctr, task Task, st ExitStatus, policy bool) {
	c.mu.Lock()
	if c.task != task {
		c.mu.Unlock()
		return // a newer run owns the container
	}
	c.task, c.process = nil, nil
	c.exitSeq++
	rec := c.rec
	if st.LogDropped > 0 {
		logrus.WithField("container", short(rec.ID)).Warnf("logging driver %s dropped %d log entries (mode=non-blocking)", rec.HostConfig.LogConfig.Type, st.LogDropped)
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	rec.State.Status = container.StateExited
	rec.State.Pid = 0
	rec.State.ExitCode = st.Code
	rec.State.OOMKilled = st.OOMKilled
	rec.State.FinishedAt = st.ExitedAt.UTC()
	if rec.State.Health != nil {
		rec.State.Health.Status = container.Unhealthy
	}
	if c.health != nil {
		c.health.stop()
		c.health = nil
	}
	s.teardown(context.Background(), c)
	// The shim has told the exit before it deletes the runtime's state
	// (which overlapped the teardown above); Close waits for that delete,
	// so the container's cgroup is gone before it may be started again or
	// reported removed.
	_ = task.Close()
	s.execs.finish(c)
	// readers read views: one that acts on the die event (a job's end, a
	// build step's) must find the container exited
	c.publish()
	if st.OOMKilled {
		s.event(rec, events.ActionOOM, nil)
	}
	s.event(rec, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.Code)})
	restart, delay := false, time.Duration(0)
	if policy {
		restart, delay = s.shouldRestart(c)
	}
	if restart {
		s.scheduleRestart(c, delay)
	}
	// the removal's one owner is whoever claims it first: a docker rm -f
	// that caused this exit already has; a docker restart stops without it
	autoRemove := rec.HostConfig.AutoRemove && !restart && !c.manualRestart && s.claimRemoval(c, false) == nil
	if autoRemove {
		// the removal's record delete is queued after this write: no need
		// to wait for its fsync (a crash before leaves a --rm container
		// that the next daemon start removes, whatever its record says)
		s.queueSave(c)
	} else {
		s.saveLogged(c)
	}
	c.notify()
	c.mu.Unlock()
	if autoRemove {
		if err := s.removeClaimed(context.Background(), c, RemoveOptions{RemoveVolumes: true, answerEarly: true}); err != nil {
			logrus.WithError(err).Warnf("auto-remove container %s", rec.ID[:12])
		}
	}
}

// teardown releases what a running container held: ports, endpoints, the
// network namespace, volume mounts and the root filesystem. Call with c.mu
// held. Every step is idempotent: teardown after a crash is safe.
func (s *Service) teardown(ctx context.Context, c *ctr) {
	if !c.held {
		return // nothing set up since the last teardown
	}
	c.held = false
	rec := c.rec
	id := rec.ID
	mode := string(rec.HostConfig.NetworkMode)
	if mode != "host" && !isContainerMode(mode) {
		s.logErr(s.d.Networks.UnpublishPorts(ctx, id), "unpublish ports")
		for name := range rec.Endpoints {
			if name == "none" || name == "host" {
				continue
			}
			s.logErr(s.d.Networks.Detach(ctx, id, name), "detach "+name)
		}
		s.logErr(s.d.Networks.DeleteSandbox(ctx, id), "delete sandbox")
	}
	rec.Endpoints, rec.Ports, rec.SandboxKey = nil, nil, ""
	s.unmountVolumes(ctx, rec)
	unmountShm(s.shmDir(id))
	s.logErr(s.d.Images.UnmountRootfs(ctx, id), "unmount rootfs")
}

func isContainerMode(mode string) bool {
	return len(mode) > len("container:") && mode[:len("container:")] == "container:"
}
