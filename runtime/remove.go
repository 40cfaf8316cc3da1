package runtime

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// RemoveOptions are the options of DELETE /containers/{id}.
type RemoveOptions struct {
	Force         bool
	RemoveVolumes bool
	// answerEarly: the container's end is answered before its root
	// filesystem, files and record are deleted (removeAnsweredEarly).
	answerEarly bool
}

// Remove deletes a container. A running one needs Force (else ErrConflict).
func (s *Service) Remove(ctx context.Context, name string, opts RemoveOptions) error {
	c, err := s.ready(ctx, name)
	if err != nil {
		return err
	}
	return s.remove(ctx, c, opts)
}

func (s *Service) remove(ctx context.Context, c *ctr, opts RemoveOptions) error {
	c.mu.Lock()
	if err := s.claimRemoval(c, opts.Force); err != nil {
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	return s.removeClaimed(ctx, c, opts)
}

// claimRemoval makes the caller the one owner of the container's removal;
// call with c.mu held. Removals race (docker rm -f against the exit of a
// --rm container, two clients, prune): whoever claims first removes, the
// others get dockerd's answers (409 in progress, 404 gone).
func (s *Service) claimRemoval(c *ctr, force bool) error {
	rec := c.rec
	select {
	case <-c.removed:
		return notFound(rec.ID)
	default:
	}
	if c.removing || rec.State.Status == container.StateRemoving {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("removal of container %s is already in progress", rec.ID[:12]))
	}
	// a restarting container (between an exit and the restart its policy
	// asked for) counts as running, as in dockerd
	if (c.running() || rec.State.Status == container.StateRestarting) && !force {
		state := "running"
		if !c.running() {
			state = "restarting"
		}
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is %s: stop the container before removing or force remove", rec.Name, state))
	}
	c.removing = true
	s.cancelRestart(c)
	return nil
}

// removeClaimed removes a container whose removal the caller claimed:
// stops it if it runs, then deletes what it owns. On failure the claim is
// given up and the container stays (dead when a removal was cut).
func (s *Service) removeClaimed(ctx context.Context, c *ctr, opts RemoveOptions) error {
	ctx = context.WithoutCancel(ctx) // a removal outlives the request that asked for it
	c.mu.Lock()
	rec := c.rec
	if c.running() {
		rec.ManuallyStopped = true
		c.stopping = true
		c.mu.Unlock()
		_ = s.kill(c, syscall.SIGKILL) // thaws a paused container

		stopped := s.waitStopped(ctx, c, 30*time.Second)
		c.mu.Lock()
		c.stopping = false
		if !stopped {
			c.removing = false
			c.mu.Unlock()
			return fmt.Errorf("container %s did not stop after SIGKILL", rec.ID[:12])
		}
	}
	prev := rec.State.Status
	rec.State.Status = container.StateRemoving
	c.notify()
	s.teardown(ctx, c)
	c.mu.Unlock()

	if opts.answerEarly {
		s.releaseVolumes(ctx, rec, opts.RemoveVolumes)
		s.removeAnsweredEarly(ctx, c)
		return nil
	}
	// the record last, so that a crash half-way leaves a record that the
	// next remove finishes
	err := s.discard(ctx, rec.ID)
	if err == nil {
		s.releaseVolumes(ctx, rec, opts.RemoveVolumes)
		err = s.table.Delete(rec.ID)
	}
	if err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.removing = false
		rec.State.Status = prev
		if prev == container.StateRemoving {
			rec.State.Status = container.StateDead
		}
		s.saveLogged(c)
		c.notify()
		return err
	}
	s.forget(c)
	return nil
}

// removeAnsweredEarly ends the removal of a container that no longer holds
// anything other objects see (network, volumes): it goes from every list,
// its name is free and its waits are released, and then its root
// filesystem, files and record are deleted. That is a --rm container's
// end, whose CLI waits for the removal (docker run --rm): the answer no
// longer waits for the layer store (~4 ms) and the record's fsync.
//
// The record's delete is queued first, so that it commits before the
// record of any container made after the answer (a new one may take the
// name). A crash before it commits leaves a --rm container that the
// next daemon start removes; a root filesystem or directory whose
// deletion failed or was cut belongs to no record then, and the start's
// orphan reaping removes it.
func (s *Service) removeAnsweredEarly(ctx context.Context, c *ctr) {
	id := c.rec.ID
	removeRootfs := s.d.Images.BeginRemoveRootfs(id)
	deleted := s.table.QueueDelete(id)
	_ = os.RemoveAll(s.stateDir(id)) // on the exec root's tmpfs: cheap
	s.forget(c)
	// its files before the root filesystem, whose end is what the image
	// store's waiters wait for
	_ = os.RemoveAll(s.containerDir(id))
	if err := removeRootfs(ctx); err != nil {
		logrus.WithError(err).Warnf("remove the root filesystem of %s (the next daemon start removes it)", short(id))
	}
	if err := deleted.Wait(); err != nil {
		logrus.WithError(err).Warnf("delete the record of %s", short(id))
	}
}

// discard deletes what only the container has: its root filesystem, its
// files and its monitor's state directory.
func (s *Service) discard(ctx context.Context, id string) error {
	if err := s.d.Images.RemoveRootfs(ctx, id); err != nil {
		return fmt.Errorf("remove root filesystem of %s: %w", id[:12], err)
	}
	_ = os.RemoveAll(s.stateDir(id))
	return os.RemoveAll(s.containerDir(id))
}

// forget takes a removed container out of every list and tells its
// waiters.
func (s *Service) forget(c *ctr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	c.removing = false
	s.mu.Lock()
	delete(s.byID, rec.ID)
	if s.names[rec.Name] == rec.ID {
		delete(s.names, rec.Name)
	}
	s.mu.Unlock()
	s.execs.forget(c)
	c.failPending(nil)
	close(c.removed)
	c.notify()
	s.event(rec, events.ActionDestroy, nil)
	bulkRemoval.note()
}

// Prune removes stopped containers matching the filters (until, label).
func (s *Service) Prune(ctx context.Context, f filters.Args) (*container.PruneReport, error) {
	if err := f.Validate("until", "label", "label!"); err != nil {
		return nil, err
	}
	until, err := untilFilter(f)
	if err != nil {
		return nil, err
	}
	if err := s.restored(ctx); err != nil {
		return nil, err
	}
	report := &container.PruneReport{ContainersDeleted: []string{}}
	s.mu.RLock()
	all := make([]*ctr, 0, len(s.byID))
	for _, c := range s.byID {
		all = append(all, c)
	}
	s.mu.RUnlock()
	for _, c := range all {
		c.mu.Lock()
		rec := c.rec
		ok := !c.running() && rec.State.Status != container.StateRestarting && rec.State.Status != container.StateRemoving &&
			f.MatchKVList("label", rec.Config.Labels) && !matchesNegLabel(f, rec.Config.Labels) &&
			(until.IsZero() || rec.Created.Before(until))
		c.mu.Unlock()
		if !ok {
			continue
		}
		size, _, _ := s.d.Images.RootfsSize(ctx, rec.ID)
		if err := s.remove(ctx, c, RemoveOptions{}); err != nil {
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, rec.ID)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}
