package runtime

import (
	"context"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/internal/safepath"
	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// restoreParallel bounds the containers restored or started at once at
// daemon start: each step is mostly waiting on a monitor or the OCI runtime.
const restoreParallel = 8

// Restore brings the in-memory state back in line with the world after a
// daemon (re)start: it reconnects to the monitors of containers that kept
// running (and re-registers their networks), records exits that happened
// while the daemon was down (die events, teardown, --rm), kills containers
// whose monitor died under them, finishes interrupted removals, and reaps
// what crashes cut half-way: starts (monitor, mounts, cgroup without a
// running record) and creates (root filesystems, directories and cgroups
// without a record). Restart policies are applied by AutoStart, after the
// network layer has released what nobody restored (RestoreDone).
func (s *Service) Restore(ctx context.Context) {
	began := time.Now()
	// pins of starts a crash cut (none is in use before the first start)
	safepath.ReapPins(s.pinsDir())
	all := s.all()
	var mounted map[string]bool // nil when unknown
	rootfses, err := s.d.Images.Rootfses(ctx)
	if err != nil {
		logrus.WithError(err).Warn("list container root filesystems")
	} else {
		mounted = make(map[string]bool, len(rootfses))
		for _, r := range rootfses {
			mounted[r.ContainerID] = r.Mounted
		}
	}
	var (
		mu     sync.Mutex
		counts = map[string]int{}
	)
	parallel(all, func(c *ctr) {
		what := s.restoreOne(ctx, c, mounted)
		mu.Lock()
		counts[what]++
		mu.Unlock()
	})
	orphans := s.reapOrphans(ctx, rootfses)
	logrus.Infof("restored %d containers in %v: %d running, %d exited while down, %d monitors lost, %d half-started reaped, %d orphans reaped",
		len(all), time.Since(began).Round(time.Millisecond), counts["running"], counts["exited"], counts["lost"], counts["reaped"], orphans)
}

// all lists the containers. Lock each one's mu only after: remove and
// rename hold a container's mu while they take s.mu, so taking a
// container's mu under s.mu deadlocks against them.
func (s *Service) all() []*ctr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*ctr, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	return out
}

// parallel runs f for each container, restoreParallel at a time.
func parallel(cs []*ctr, f func(*ctr)) {
	sem := make(chan struct{}, restoreParallel)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(c)
		}()
	}
	wg.Wait()
}

// restoreOne restores one container and says what it found. rootfses
// tells which root filesystems exist and are mounted (nil: unknown).
func (s *Service) restoreOne(ctx context.Context, c *ctr, rootfses map[string]bool) string {
	c.mu.Lock()
	rec := c.rec
	rootfsMounted, hasRootfs := rootfses[rec.ID]
	if rec.Broken != "" {
		// nothing of it can be managed: stop whatever of it still runs
		c.mu.Unlock()
		s.reapRun(ctx, c)
		return "broken"
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
			s.health.start(c)
			c.mu.Unlock()
			return "running"
		}
		st, lost := s.gone.exit(ctx, rec.ID)
		if lost != "" {
			rec.State.Error = lost
		}
		// recordExit needs the task it is told about to be the current one
		gone := goneTask{}
		c.task = gone
		c.mu.Unlock()
		s.recordExit(c, gone, st, false)
		_ = os.RemoveAll(stateDir)
		s.removeCgroup(s.cgroupsPath(rec))
		if lost != "" {
			return "lost"
		}
		return "exited"
	case container.StateRestarting:
		// the daemon died during a restart's backoff (or in the start that
		// followed it): the exit stays recorded; AutoStart decides again
		rec.State.Status = container.StateExited
		s.saveLogged(c)
		c.notify()
		c.mu.Unlock()
		s.reapRun(ctx, c)
		return "restarting"
	case container.StateRemoving:
		rec.State.Status = container.StateDead
		c.mu.Unlock()
		if err := s.remove(ctx, c, RemoveOptions{Force: true}); err != nil {
			logrus.WithError(err).Warnf("finish removal of %s", rec.ID[:12])
		}
		return "removed"
	}
	if rootfses != nil && !hasRootfs && rec.State.Status != container.StateDead {
		// a removal cut after the root filesystem went (the record goes
		// last): the container cannot run again; rm finishes it, as for
		// dockerd's dead containers
		rec.State.Status = container.StateDead
		rec.State.Error = "root filesystem is gone (a removal was interrupted); remove the container"
		s.saveLogged(c)
		c.notify()
		c.mu.Unlock()
		s.reapRun(ctx, c)
		return "dead"
	}
	c.mu.Unlock()
	if _, err := os.Stat(s.stateDir(rec.ID)); err == nil || rootfsMounted {
		// a start cut half-way: its monitor, mounts and sandbox go
		s.reapRun(ctx, c)
		return "reaped"
	}
	s.removeCgroup(s.cgroupsPath(rec))
	return "stopped"
}

// goneMonitors finds out how a container whose monitor no longer answers
// ended (at restore, and when a stop finds the monitor gone). It needs the
// exits monitors leave behind, the OCI runtime (to kill and delete what
// runs unsupervised) and where a container's monitor state is.
type goneMonitors struct {
	exits    exitReader
	oci      unsupervisedKiller
	stateDir func(id string) string
}

// exitReader reads the exit status a gone monitor left (Monitors.ReadExit).
type exitReader interface {
	ReadExit(stateDir string) (ExitStatus, bool, error)
}

// unsupervisedKiller kills and deletes a container whose monitor is gone
// (OCIRuntime.Kill, Delete).
type unsupervisedKiller interface {
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	Delete(ctx context.Context, id string) error
}

func newGoneMonitors(exits exitReader, oci unsupervisedKiller, stateDir func(string) string) *goneMonitors {
	return &goneMonitors{exits: exits, oci: oci, stateDir: stateDir}
}

// exit is the exit the monitor recorded, or, when it died without one (it
// was killed, or the host rebooted), the container is killed through the
// OCI runtime so it never runs unsupervised. lost explains the latter.
func (g *goneMonitors) exit(ctx context.Context, id string) (st ExitStatus, lost string) {
	st, ok, err := g.exits.ReadExit(g.stateDir(id))
	if err == nil && ok {
		logErr(g.oci.Delete(ctx, id), "delete runtime state")
		return st, ""
	}
	st = ExitStatus{Code: 255, ExitedAt: time.Now()}
	lost = "container monitor was gone and the container had stopped"
	if err := g.oci.Kill(ctx, id, syscall.SIGKILL); err == nil {
		st.Code = 128 + int(syscall.SIGKILL)
		lost = "container monitor died; berthd killed the unsupervised container"
	}
	logErr(g.oci.Delete(ctx, id), "delete runtime state")
	logrus.Warnf("container %s: %s", short(id), lost)
	return st, lost
}

// AutoStart starts, once the daemon has restored everything, the
// containers whose restart policy asks for it after a daemon start (as
// dockerd: always, even when stopped by the user; unless-stopped unless
// stopped by the user; on-failure after a failure under its max), each
// with its RestartCount reset. Containers that join another's network
// namespace go after the others.
func (s *Service) AutoStart(ctx context.Context) {
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
		if c.running() || c.rec.State.Status == container.StateRestarting {
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
	parallel(first, start)
	parallel(then, start)
	logrus.Infof("started %d containers by restart policy in %v", len(first)+len(then), time.Since(began).Round(time.Millisecond))
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
