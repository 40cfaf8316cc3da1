package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/oci"
	"github.com/berthd/berth/runtime/shim/proto"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// Start starts a created or stopped container. Starting a running
// container is ErrNotModified (304).
func (s *Service) Start(ctx context.Context, name string) error {
	if err := s.restored(ctx); err != nil {
		return err
	}
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err := startable(c); err != nil {
		c.mu.Unlock()
		return err
	}
	return s.startByUser(ctx, c, nil)
}

// startByUser starts the container for docker start or restart; call with
// c.mu held, it returns with c.mu released. started runs, locked, after a
// successful start. As dockerd does, a --rm container that fails to start
// is removed (`docker run --rm` waits for that removal).
func (s *Service) startByUser(ctx context.Context, c *ctr, started func()) error {
	c.resetRestarts()
	err := s.startLocked(ctx, c)
	if err == nil && started != nil {
		started()
	}
	autoRemove := err != nil && c.rec.HostConfig.AutoRemove && s.claimRemoval(c, false) == nil
	c.mu.Unlock()
	if autoRemove {
		if rmErr := s.removeClaimed(ctx, c, RemoveOptions{RemoveVolumes: true}); rmErr != nil {
			logrus.WithError(rmErr).Warnf("auto-remove container %s", c.rec.ID[:12])
		}
	}
	return err
}

// startable says whether a start by the user may go ahead; call with c.mu
// held.
func startable(c *ctr) error {
	switch c.rec.State.Status {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		// a restarting container counts as running, as in dockerd
		return errdefs.ErrNotModified.WithMessage("container already started")
	case container.StateDead:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot start a dead container %s", c.rec.ID[:12]))
	}
	if c.removing || c.rec.State.Status == container.StateRemoving {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot start container %s: removal in progress", c.rec.ID[:12]))
	}
	return nil
}

// undo is a stack of cleanups run when a start fails half-way.
type undo []func()

func (u *undo) add(f func()) { *u = append(*u, f) }
func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// startLocked brings the container up; call with c.mu held. On failure
// everything set up so far is torn down again and the error recorded in
// the state, as dockerd does (exit code 127/126 for missing or
// non-executable commands).
func (s *Service) startLocked(ctx context.Context, c *ctr) (retErr error) {
	rec := c.rec
	// a start outlives the request that asked for it
	ctx = context.WithoutCancel(ctx)
	var u undo
	var nets *netSetup
	defer func() {
		if retErr != nil {
			// the network's cleanups too; and dockerd sets the network up
			// before the rest, so its failure is the one told
			if nets != nil {
				if err := nets.join(rec, &u); err != nil {
					retErr = err
				}
			}
			u.run()
			// what the undone steps held is gone: inspect shows the
			// configured networks without addresses, as dockerd does
			rec.Endpoints, rec.Ports = nil, nil
			c.failPending(retErr)
			rec.State.Error = retErr.Error()
			rec.State.ExitCode = exitCodeFor(retErr)
			if rec.State.Status != container.StateCreated {
				rec.State.Status = container.StateExited
			}
			s.saveLogged(c)
			c.notify()
		}
	}()
	// a bug in a step must not leave the container locked (docker ps,
	// stop and the daemon's own shutdown would wait on it forever): the
	// panic is logged and the start fails, undone like any other failure
	defer func() {
		if v := recover(); v != nil {
			safe.Log("the start of container "+rec.ID[:12], v)
			retErr = fmt.Errorf("internal error starting container %s: %v", rec.ID[:12], v)
		}
	}()

	logCfg, err := s.logConfig(rec)
	if err != nil {
		return fmt.Errorf("failed to initialize logging driver: %w", err)
	}
	stateDir := s.stateDir(rec.ID)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	u.add(func() { _ = os.RemoveAll(stateDir) })
	// the monitor's process starts now and gets going while the rootfs,
	// mounts and network are set up; it waits for the Launch below
	mon, err := s.d.Monitors.Prepare(ctx, stateDir, logCfg)
	if err != nil {
		return err
	}
	u.add(mon.Close)

	rootfs, err := s.d.Images.MountRootfs(ctx, rec.ID)
	if err != nil {
		return err
	}
	u.add(func() { s.logErr(s.d.Images.UnmountRootfs(ctx, rec.ID), "unmount rootfs") })

	mounts, unpin, err := s.setupMounts(ctx, c, rootfs, &u)
	if err != nil {
		return err
	}
	// the OCI runtime has made its mounts once the start is over
	defer unpin()
	nsPath, nets, err := s.startNetwork(ctx, c, &u)
	if err != nil {
		return err
	}
	// legacy links read this container's endpoint on the default bridge
	if len(rec.Links) > 0 {
		if err := nets.join(rec, &u); err != nil {
			return err
		}
	}
	links, err := s.legacyLinks(rec)
	if err != nil {
		return err
	}
	join, err := s.setupNamespaces(c, &u)
	if err != nil {
		return err
	}
	if err := s.initCPURt(rec); err != nil {
		return err
	}
	// /etc/hosts names the container's addresses: while they are being
	// made, the files are placed for the spec's mounts and written before
	// the start (in place: the mounts keep their inodes)
	var files []specs.Mount
	if nets.pending() {
		files, err = s.placeEtcFiles(rec)
	} else {
		files, err = s.writeEtcFiles(rec, links)
	}
	if err != nil {
		return err
	}
	mounts = append(append(mounts, files...), join.mounts...)

	user, err := oci.ResolveUser(rootfs, rec.Config.User, rec.HostConfig.GroupAdd)
	if err != nil {
		return err
	}
	cfg := *rec.Config
	cfg.Entrypoint, cfg.Cmd = []string{rec.Path}, rec.Args
	spec, err := oci.Generate(oci.Input{
		ID: rec.ID, Rootfs: rootfs, Config: &cfg, HostConfig: rec.HostConfig,
		User: user, Mounts: mounts, NetNSPath: nsPath, IPCNSPath: join.ipcPath, PIDNSPath: join.pidPath,
		LinkEnv: linksEnv(links), CgroupsPath: s.cgroupsPath(rec), InitPath: s.d.InitPath,
	})
	if err != nil {
		return err
	}
	if err := writeSpec(filepath.Join(stateDir, "config.json"), spec); err != nil {
		return err
	}
	process, err := json.Marshal(spec.Process)
	if err != nil {
		return err
	}
	task, err := mon.Launch(ctx, MonitorConfig{
		ID: rec.ID, Bundle: stateDir, StateDir: stateDir, Log: logCfg, Runtime: runtimeOf(rec),
		Terminal: rec.Config.Tty, OpenStdin: rec.Config.OpenStdin, StdinOnce: rec.Config.StdinOnce,
		ConsoleSize: rec.HostConfig.ConsoleSize,
	})
	if err != nil {
		return err
	}
	u.add(func() { _ = task.Close() })
	if nets.pending() {
		if err := nets.join(rec, &u); err != nil {
			return err
		}
		if _, err := s.writeEtcFiles(rec, links); err != nil {
			return err
		}
	}
	c.connectPending(task)
	if err := task.Start(ctx); err != nil {
		return err
	}

	rec.State = State{Status: container.StateRunning, Pid: task.Pid(), StartedAt: time.Now().UTC(), Health: initialHealth(rec)}
	rec.HasBeenStarted = true
	rec.SandboxKey = nsPath
	c.task = task
	c.rootfs = rootfs
	c.process = process
	c.held = true
	s.saveLogged(c)
	c.notify()
	s.event(rec, events.ActionStart, nil)
	if rec.Endpoints[defaultBridge] != nil {
		s.updateLinkParents(rec.ID)
	}
	s.watch(c, task)
	s.health.start(c)
	return nil
}

// watch waits for the container's exit in the background.
func (s *Service) watch(c *ctr, task Task) {
	s.bgGo(func() {
		st, ok := s.waitExit(c.rec.ID, task)
		if ok {
			s.handleExit(c, task, st)
		}
	})
}

func (s *Service) cgroupsPath(rec *Record) string {
	parent := rec.HostConfig.CgroupParent
	if parent == "" {
		parent = s.d.CgroupParent
	}
	return "/" + strings.Trim(parent, "/") + "/" + rec.ID
}

// logPath is the json-file log of a container (what inspect shows as
// LogPath for json-file containers).
func (s *Service) logPath(id string) string {
	return filepath.Join(s.containerDir(id), id+"-json.log")
}

// logConfig is the container's logging as its monitor gets it.
func (s *Service) logConfig(rec *Record) (logdriver.Config, error) {
	info, err := logInfo(rec)
	if err != nil {
		return logdriver.Config{}, err
	}
	lc := rec.HostConfig.LogConfig
	cfg := logdriver.Config{Driver: lc.Type, Opts: lc.Config, Info: info}
	if st, ok := logdriver.Readable(lc.Type, rec.ID, lc.Config); ok {
		cfg.Path = filepath.Join(s.containerDir(rec.ID), st.Name)
	}
	return cfg, nil
}

func writeSpec(path string, spec *specs.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// exitCodeFor is the exit code a failed start or health probe records, as
// dockerd's: the code the shim classified when the OCI runtime refused the
// process (127 not found, 126 not executable, 128 otherwise; see
// proto.ProcessError), and 128 for every other failure (a mount, a network).
func exitCodeFor(err error) int {
	if pe, ok := errors.AsType[*proto.ProcessError](err); ok {
		return pe.ExitCode
	}
	return 128
}

func (s *Service) logErr(err error, what string) { logErr(err, what) }

// logErr logs a cleanup's failure; what is already gone is no failure.
func logErr(err error, what string) {
	if err != nil && !errdefs.IsNotFound(err) {
		logrus.WithError(err).Warn(what)
	}
}

// parseLinks reads links ("db", "db:alias", dockerd's "/db:/web/alias") into
// alias -> linked container name.
func parseLinks(links []string) map[string]string {
	out := map[string]string{}
	for _, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		target = strings.TrimPrefix(target, "/")
		if !ok {
			alias = target
		}
		if i := strings.LastIndex(alias, "/"); i >= 0 {
			alias = alias[i+1:]
		}
		if target != "" && alias != "" {
			out[alias] = target
		}
	}
	return out
}
