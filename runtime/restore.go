package runtime

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// The restore phase. berthd serves the API while it restores (the restore
// of a thousand running containers takes seconds), so what a request may
// see of a container that is not restored yet is a rule:
//
//   - Readers (list, inspect, counts, name lookup, the compose and DNS
//     views) read the container's published view, as always: for a
//     container not restored yet that is its stored record. They never wait.
//   - An operation on a container (stop, kill, exec, logs, attach, wait,
//     rm, rename, update, cp, ...) waits until that container is restored:
//     each container loaded at daemon start has a gate, opened when its
//     restore is over (see ready). A container is restored in a few
//     milliseconds once its turn comes.
//   - What makes new runtime state (create, start, restart, network
//     connect and disconnect, prune, and the restarts of restart policies)
//     waits until the restore phase is over: every container restored and
//     the network layer told (RestoreDone), which releases what nobody
//     restored, and the reaper of orphans, which removes what has no record
//     yet, would otherwise take what such an operation makes.
//
// Every wait is for the condition (a closed channel), with the request's
// context. dockerd, by contrast, serves its API only after its restore
// (and the restarts of restart policies) returned, as berthd did before.

// restorer brings the containers back after a daemon (re)start: it
// reconnects to the monitors of containers that kept running (and
// re-registers their networks), records exits that happened while the
// daemon was down (die events, teardown, --rm), kills containers whose
// monitor died under them, finishes interrupted removals, and reaps what
// crashes cut half-way: starts (monitor, mounts, cgroup without a running
// record) and creates (root filesystems, directories and cgroups without a
// record). It needs the monitors, the image store's root filesystems, the
// network layer's Restore, how a gone monitor ended, where monitor state
// is, and the lifecycle (restoreHost) for what happens to a container next.
// It owns the restore phase's gates.
type restorer struct {
	monitors monitorConnector
	images   rootfsRestorer
	networks endpointRestorer
	gone     goneExits
	host     restoreHost
	stateDir func(id string) string
	// hold runs before the restore begins: a seam for tests that look at
	// the daemon mid-restore (Deps.RestoreHold).
	hold func(context.Context)
	// parallel bounds the containers restored at once.
	parallel int
	// phase is closed when the restore phase is over (endPhase).
	phase    chan struct{}
	endPhase func()
}

// monitorConnector reconnects to a running container's monitor
// (Monitors.Connect).
type monitorConnector interface {
	Connect(ctx context.Context, stateDir string) (Task, error)
}

// rootfsRestorer lists the containers' root filesystems and mounts a
// running container's again when its mount is gone (Images.Rootfses,
// MountRootfs, UnmountRootfs).
type rootfsRestorer interface {
	Rootfses(ctx context.Context) ([]RootfsInfo, error)
	MountRootfs(ctx context.Context, containerID string) (string, error)
	UnmountRootfs(ctx context.Context, containerID string) error
}

// endpointRestorer re-registers a running container with the network layer
// (Networks.Restore).
type endpointRestorer interface {
	Restore(ctx context.Context, req RestoreRequest) error
}

// goneExits tells how a container whose monitor is gone ended (goneMonitors).
type goneExits interface {
	exit(ctx context.Context, id string) (st ExitStatus, lost string)
}

// restoreHost is what the restorer hands containers to: the lifecycle.
type restoreHost interface {
	// all lists the containers.
	all() []*ctr
	// adopt takes over a running container whose monitor answered: its
	// exit is watched and its health checks run. Called with c.mu held.
	adopt(c *ctr, task Task)
	// recordExit records an exit found at restore as any exit (die event,
	// teardown, --rm); c.task is task. Called without c.mu.
	recordExit(c *ctr, task Task, st ExitStatus, policy bool)
	// reapRun stops and releases what a container that does not run still
	// holds. Called without c.mu.
	reapRun(ctx context.Context, c *ctr)
	// finishRemoval completes a removal a crash cut. Called without c.mu.
	finishRemoval(ctx context.Context, c *ctr) error
	// autoRemove removes a --rm container that does not run, as its exit
	// would have (anonymous volumes too). Called without c.mu.
	autoRemove(ctx context.Context, c *ctr) error
	// removeCgroup removes the container's (empty) cgroup.
	removeCgroup(rec *Record)
	// saveLogged persists and publishes the record. Called with c.mu held.
	saveLogged(c *ctr)
	// reapOrphans removes what belongs to no record; it returns how many.
	reapOrphans(ctx context.Context, rootfses []RootfsInfo) int
}

// restoreParallel bounds the containers restored at once. More did not
// help when each restore remounted its root filesystem (measured with 100
// running: 32 at once took as long as 8, the remounts queueing on the
// image store's lock); a running container's mount is adopted now
// (restoreRootfs).
const restoreParallel = 8

func newRestorer(monitors monitorConnector, images rootfsRestorer, networks endpointRestorer, gone goneExits,
	host restoreHost, stateDir func(string) string, hold func(context.Context)) *restorer {
	if hold == nil {
		hold = func(context.Context) {}
	}
	r := &restorer{monitors: monitors, images: images, networks: networks, gone: gone, host: host,
		stateDir: stateDir, hold: hold, parallel: restoreParallel, phase: make(chan struct{})}
	r.endPhase = sync.OnceFunc(func() { close(r.phase) })
	return r
}

// opened is a gate that is open: containers made after the daemon start
// have nothing to restore.
var opened = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// waitContainer waits until c is restored. Errors: ctx.Err().
func (r *restorer) waitContainer(ctx context.Context, c *ctr) error {
	select {
	case <-c.restored:
		return nil
	default:
	}
	select {
	case <-c.restored:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitPhase waits until the restore phase is over. Errors: ctx.Err().
func (r *restorer) waitPhase(ctx context.Context) error {
	select {
	case <-r.phase: // an open phase wins over a done ctx, as in waitContainer
		return nil
	default:
	}
	select {
	case <-r.phase:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run restores every container, opening each one's gate as it is done, and
// then reaps the orphans. It returns what it found, by kind.
func (r *restorer) run(ctx context.Context) map[string]int {
	all := r.host.all()
	r.hold(ctx)
	began := time.Now()
	var byID map[string]RootfsInfo // nil when unknown
	rootfses, err := r.images.Rootfses(ctx)
	if err != nil {
		logrus.WithError(err).Warn("list container root filesystems")
	} else {
		byID = make(map[string]RootfsInfo, len(rootfses))
		for _, rf := range rootfses {
			byID[rf.ContainerID] = rf
		}
	}
	var (
		mu     sync.Mutex
		counts = map[string]int{}
	)
	parallel(r.parallel, all, func(c *ctr) {
		defer c.openGate()
		what := r.one(ctx, c, byID)
		mu.Lock()
		counts[what]++
		mu.Unlock()
	})
	counts["orphans"] = r.host.reapOrphans(ctx, rootfses)
	logrus.Infof("restored %d containers in %v: %d running, %d exited while down, %d monitors lost, %d half-started reaped, %d orphans reaped",
		len(all), time.Since(began).Round(time.Millisecond), counts["running"], counts["exited"], counts["lost"], counts["reaped"], counts["orphans"])
	return counts
}

// openGate lets the operations waiting for c's restore go on.
func (c *ctr) openGate() {
	select {
	case <-c.restored:
	default:
		close(c.restored)
	}
}

// parallel runs f for each container, n at a time.
func parallel(n int, cs []*ctr, f func(*ctr)) {
	sem := make(chan struct{}, n)
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

// one restores one container and says what it found. rootfses are the
// root filesystems by container (nil: unknown).
func (r *restorer) one(ctx context.Context, c *ctr, rootfses map[string]RootfsInfo) string {
	c.mu.Lock()
	rec := c.rec
	rf, hasRootfs := rootfses[rec.ID]
	if rec.Broken != "" {
		// nothing of it can be managed: stop whatever of it still runs
		c.mu.Unlock()
		r.host.reapRun(ctx, c)
		return "broken"
	}
	switch rec.State.Status {
	case container.StateRunning, container.StatePaused:
		return r.running(ctx, c, rf)
	case container.StateRestarting:
		// the daemon died during a restart's backoff (or in the start that
		// followed it): the exit stays recorded; AutoStart decides again
		rec.State.Status = container.StateExited
		r.host.saveLogged(c)
		c.notify()
		c.mu.Unlock()
		r.host.reapRun(ctx, c)
		return "restarting"
	case container.StateRemoving:
		rec.State.Status = container.StateDead
		c.mu.Unlock()
		if err := r.host.finishRemoval(ctx, c); err != nil {
			logrus.WithError(err).Warnf("finish removal of %s", short(rec.ID))
		}
		return "removed"
	}
	if rec.HostConfig != nil && rec.HostConfig.AutoRemove {
		// as dockerd: a --rm container that does not run is removed at
		// daemon start (one created and never started, one whose removal
		// a crash cut); its layer is volatile, not to be mounted again
		// after a host crash (registry/rootfs.go)
		c.mu.Unlock()
		if err := r.host.autoRemove(ctx, c); err != nil {
			logrus.WithError(err).Warnf("auto-remove container %s", short(rec.ID))
		}
		return "removed"
	}
	if rootfses != nil && !hasRootfs && rec.State.Status != container.StateDead {
		// a removal cut after the root filesystem went (the record goes
		// last): the container cannot run again; rm finishes it, as for
		// dockerd's dead containers
		rec.State.Status = container.StateDead
		rec.State.Error = "root filesystem is gone (a removal was interrupted); remove the container"
		r.host.saveLogged(c)
		c.notify()
		c.mu.Unlock()
		r.host.reapRun(ctx, c)
		return "dead"
	}
	c.mu.Unlock()
	if _, err := os.Stat(r.stateDir(rec.ID)); err == nil || rf.Mounted {
		// a start cut half-way: its monitor, mounts and sandbox go
		r.host.reapRun(ctx, c)
		return "reaped"
	}
	r.host.removeCgroup(rec)
	return "stopped"
}

// running restores a container recorded as running, whose root filesystem
// is rf; called with c.mu held, it releases it.
func (r *restorer) running(ctx context.Context, c *ctr, rf RootfsInfo) string {
	rec := c.rec
	stateDir := r.stateDir(rec.ID)
	task, err := r.monitors.Connect(ctx, stateDir)
	if err == nil {
		rootfs, err := r.restoreRootfs(ctx, rec.ID, rf)
		if err != nil {
			logrus.WithError(err).Warnf("restore rootfs of %s", short(rec.ID))
		}
		c.task, c.rootfs = task, rootfs
		if err := r.restoreNetwork(ctx, rec); err != nil {
			logrus.WithError(err).Warnf("restore network of %s", short(rec.ID))
		}
		r.host.adopt(c, task)
		c.mu.Unlock()
		return "running"
	}
	st, lost := r.gone.exit(ctx, rec.ID)
	if lost != "" {
		rec.State.Error = lost
	}
	// recordExit needs the task it is told about to be the current one
	gone := goneTask{}
	c.task = gone
	c.mu.Unlock()
	r.host.recordExit(c, gone, st, false)
	_ = os.RemoveAll(stateDir)
	r.host.removeCgroup(rec)
	if lost != "" {
		return "lost"
	}
	return "exited"
}

// restoreRootfs gives a running container's root filesystem back. Its
// mount outlives a daemon crash (it is in the host's mount namespace, and
// the store counted it when the container started): that mount is adopted
// as it is, with no store call. Mounting it again would cost a write of
// the store's mount records under the store's lock (39 ms each, queued
// when many restore at once) and add one to its count at every restart.
// A mount that is gone (unmounted by hand while the daemon was down; not a
// reboot, which ends the container too) is made again, its stale count
// reset first so a later unmount is the last.
func (r *restorer) restoreRootfs(ctx context.Context, id string, rf RootfsInfo) (string, error) {
	if rf.MountPath != "" {
		return rf.MountPath, nil
	}
	if rf.StaleMount {
		if err := r.images.UnmountRootfs(ctx, id); err != nil {
			return "", err
		}
	}
	return r.images.MountRootfs(ctx, id)
}

// restoreNetwork re-registers a running container's endpoints, ports and
// DNS records with the network layer after a daemon restart.
func (r *restorer) restoreNetwork(ctx context.Context, rec *Record) error {
	if rec.SandboxKey == "" {
		return nil
	}
	return r.networks.Restore(ctx, RestoreRequest{
		ContainerID: rec.ID, ContainerName: rec.Name[1:], NSPath: rec.SandboxKey,
		Endpoints: rec.Endpoints, Ports: rec.Ports, Labels: rec.Config.Labels, Hostname: rec.Config.Hostname,
	})
}

// lifecycle is the Service as the restorer sees it (restoreHost).
type lifecycle struct{ *Service }

func (l lifecycle) adopt(c *ctr, task Task) {
	l.watch(c, task)
	l.health.start(c)
}

func (l lifecycle) finishRemoval(ctx context.Context, c *ctr) error {
	return l.remove(ctx, c, RemoveOptions{Force: true})
}

func (l lifecycle) autoRemove(ctx context.Context, c *ctr) error {
	return l.remove(ctx, c, RemoveOptions{Force: true, RemoveVolumes: true})
}

func (l lifecycle) removeCgroup(rec *Record) { l.Service.removeCgroup(l.cgroupsPath(rec)) }

var _ restoreHost = lifecycle{}

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
