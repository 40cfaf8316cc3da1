// Package runtime owns containers: their records, the lifecycle state
// machine (create, start, stop, kill, wait, restart, pause, rename, remove),
// logs, attach and exec, health checks and restart policies. It drives the
// OCI runtime through per-container monitors and asks the image, network
// and volume subsystems for root filesystems, endpoints and mounts.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/oci"
	"github.com/berthd/berth/store"
	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// Deps is everything the runtime needs. All fields are required unless noted.
type Deps struct {
	DataRoot string // containers' files: <DataRoot>/containers/<id>
	ExecRoot string // bundles and monitor state: <ExecRoot>/containers/<id>
	// CgroupParent is the cgroup (v1, cgroupfs) under which containers go.
	CgroupParent string
	// InitPath is the host path of the init for --init (tini); "" disables --init.
	InitPath string
	DB       *store.DB
	Images   Images
	Networks Networks
	Volumes  Volumes
	Monitors Monitors
	OCI      OCIRuntime
	Events   Publisher
	// Names resolves names Docker's rules do not know (compose names).
	Names NameFallback
	// DNSSearch gives each container's DNS search domains (compose's
	// policy: the deployment's zone, then the daemon's).
	DNSSearch DNSSearch
	// LogDefaults is the daemon's default logging (dockerd's --log-driver
	// and --log-opt, or daemon.json), read at each create: a SIGHUP may
	// change it. Optional (json-file without options).
	LogDefaults func() container.LogConfig
	// Runtimes are the OCI runtimes containers may ask for. Optional (runc
	// only).
	Runtimes Runtimes
	// DefaultIpcMode is the IPC mode of containers created without one
	// (dockerd's --default-ipc-mode): "private" (also when empty) or
	// "shareable".
	DefaultIpcMode container.IpcMode
	// CPURealtimePeriod and CPURealtimeRuntime (µs, dockerd's daemon
	// --cpu-rt-period and --cpu-rt-runtime) are given to the containers'
	// parent cgroups, so that containers can have real-time runtime. 0: not set.
	CPURealtimePeriod, CPURealtimeRuntime int64
	// RestoreHold runs when Restore begins, before any container is
	// restored: a seam for tests that look at the daemon mid-restore.
	// Optional.
	RestoreHold func(context.Context)
}

// Service implements the container backends of the Engine API.
type Service struct {
	d     Deps
	table *store.Table[Record]
	// the parts with their own small dependency sets (see
	// docs/CONTRIBUTING.md, "runtime's parts")
	logs     *logReader
	execs    *execTable
	health   *healthChecker
	attaches *attacher
	gone     *goneMonitors
	restore  *restorer

	mu    sync.RWMutex
	byID  map[string]*ctr
	names map[string]string // "/name" -> id

	// bg tracks background goroutines (exit handlers, restarts) for Close;
	// ctx ends them.
	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New builds the service and loads the container records. The service is
// in its restore phase: call Restore to reconnect to running containers,
// then AutoStart (see "The restore phase").
func New(d Deps) (*Service, error) {
	var missing []string
	for name, v := range map[string]any{"DB": d.DB, "Images": d.Images, "Networks": d.Networks, "Volumes": d.Volumes, "Monitors": d.Monitors, "OCI": d.OCI, "Events": d.Events, "Names": d.Names, "DNSSearch": d.DNSSearch} {
		if v == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 || d.DataRoot == "" || d.ExecRoot == "" {
		return nil, fmt.Errorf("runtime.New: missing dependencies %v (and DataRoot/ExecRoot)", missing)
	}
	if d.Runtimes == nil {
		d.Runtimes = runcOnly{}
	}
	if d.LogDefaults == nil {
		d.LogDefaults = func() container.LogConfig { return container.LogConfig{} }
	}
	if (d.CPURealtimePeriod != 0 || d.CPURealtimeRuntime != 0) && !oci.ProbeHost().Cgroup.CPURealtime {
		return nil, errors.New("daemon-scoped cpu-rt-period and cpu-rt-runtime are not supported by the kernel")
	}
	for _, dir := range []string{filepath.Join(d.DataRoot, "containers"), filepath.Join(d.ExecRoot, "c")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, err
		}
	}
	table, err := store.NewTable[Record](d.DB, "containers")
	if err != nil {
		return nil, err
	}
	s := &Service{
		d: d, table: table,
		byID: map[string]*ctr{}, names: map[string]string{},
		logs: newLogReader(filepath.Join(d.DataRoot, "containers"), logdriver.Readable),
	}
	s.attaches = newAttacher(d.Events, s.logs)
	s.gone = newGoneMonitors(d.Monitors, d.OCI, s.stateDir)
	s.execs = newExecTable(d.Events, s.stateDir)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.health = newHealthChecker(s.ctx, s.execs, s.saveLogged, d.Events, s.bgGo)
	s.restore = newRestorer(d.Monitors, d.Images, d.Networks, s.gone, lifecycle{s}, s.stateDir, d.RestoreHold)
	recs, corrupt, err := table.List()
	if err != nil {
		return nil, err
	}
	for id, rec := range recs {
		if err := checkRecord(id, rec); err != nil {
			corrupt = append(corrupt, store.Corrupt{ID: id, Err: err})
			continue
		}
		c := newCtr(rec)
		c.held = true                    // a crash may have cut its last teardown short
		c.restored = make(chan struct{}) // opened by Restore
		s.byID[id] = c
		s.names[rec.Name] = id
	}
	for _, c := range corrupt {
		// keep serving the rest; the broken record shows up as a dead container
		logrus.WithError(c.Err).Errorf("container record %s is corrupt", c.ID)
		rec := brokenRecord(c.ID, c.Err)
		bc := newCtr(rec)
		bc.restored = make(chan struct{}) // opened by Restore
		s.byID[c.ID] = bc
		s.names[rec.Name] = c.ID
	}
	return s, nil
}

// Close stops background work. Running containers keep running under their
// monitors (berthd restarts reconnect to them).
func (s *Service) Close() error {
	s.cancel()
	for _, c := range s.all() {
		c.mu.Lock()
		if c.restartTimer != nil && c.restartTimer.Stop() {
			s.bg.Done()
		}
		if c.health != nil {
			c.health.stop()
		}
		c.mu.Unlock()
	}
	s.bg.Wait()
	return nil
}

func (s *Service) containerDir(id string) string {
	return filepath.Join(s.d.DataRoot, "containers", id)
}

// stateDir is where a running container's bundle and monitor live. Its
// name is short because the monitor's unix socket inside it must fit in
// 107 bytes; 24 hex digits of the id are unique in practice.
func (s *Service) stateDir(id string) string {
	return filepath.Join(s.d.ExecRoot, "c", id[:min(24, len(id))])
}

// save persists the record and publishes it to readers; call with c.mu
// held. A record that could not be persisted is not published: the caller
// reverts or reports the change.
func (s *Service) save(c *ctr) error {
	if err := s.table.Put(c.rec.ID, c.rec); err != nil {
		return fmt.Errorf("persist container %s: %w", c.rec.ID[:12], err)
	}
	c.publish()
	return nil
}

// queueSave queues the record's write and publishes it without waiting
// for it to be durable; call with c.mu held. For a record whose loss in a
// crash changes nothing (the exit of a --rm container, removed next).
func (s *Service) queueSave(c *ctr) {
	if _, err := s.table.QueuePut(c.rec.ID, c.rec); err != nil {
		logrus.WithError(err).Error("persist container state")
	}
	c.publish()
}

// saveLogged persists and logs a failure: used where the state change has
// already happened and must be reported even if the disk is full.
func (s *Service) saveLogged(c *ctr) {
	if err := s.save(c); err != nil {
		logrus.WithError(err).Error("persist container state")
		c.publish()
	}
}

var errClosed = errors.New("daemon is shutting down")

func (s *Service) isClosed() bool { return s.ctx.Err() != nil }

// Counts implements sysinfo.ContainerCounter.
func (s *Service) Counts() (total, running, paused, stopped int) {
	for _, rec := range s.views() {
		switch rec.State.Status {
		case "running", "restarting":
			running++
		case "paused":
			paused++
		default:
			stopped++
		}
		total++
	}
	return
}

// bgGo runs f in the background, tracked for Close. A panic in f is
// logged and ends only f: the daemon keeps serving.
func (s *Service) bgGo(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer safe.Recover("background work of the container runtime")
		f()
	}()
}

var errMonitorGone = errors.New("container monitor is gone")

// Exists reports whether a container with this full id exists.
func (s *Service) Exists(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.byID[id]
	return ok
}

// checkRecord catches a record that decodes but cannot be a container's
// (damaged in a way JSON does not notice): it would crash the daemon later.
func checkRecord(id string, rec *Record) error {
	switch {
	case rec.ID != id:
		return fmt.Errorf("record of %s holds id %q", id, rec.ID)
	case !strings.HasPrefix(rec.Name, "/") || len(rec.Name) < 2:
		return fmt.Errorf("record of %s has no name", id)
	case rec.Config == nil || rec.HostConfig == nil:
		return fmt.Errorf("record of %s has no configuration", id)
	}
	return nil
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
