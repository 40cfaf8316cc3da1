// Command berthd is the berth daemon: it serves the Docker Engine API on a
// unix socket. This is the only place that knows every concrete type: it
// reads the configuration, builds each subsystem through its constructor and
// serves until SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berth/builder"
	bkremote "github.com/berthd/berth/builder/buildkit/remote"
	"github.com/berthd/berth/builder/buildkit/steps"
	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/engine"
	buildrouter "github.com/berthd/berth/engine/router/build"
	composerouter "github.com/berthd/berth/engine/router/compose"
	"github.com/berthd/berth/engine/router/containers"
	"github.com/berthd/berth/engine/router/debug"
	"github.com/berthd/berth/engine/router/images"
	"github.com/berthd/berth/engine/router/networks"
	"github.com/berthd/berth/engine/router/session"
	"github.com/berthd/berth/engine/router/system"
	"github.com/berthd/berth/engine/router/unused"
	"github.com/berthd/berth/engine/router/volumes"
	"github.com/berthd/berth/events"
	"github.com/berthd/berth/internal/execroot"
	"github.com/berthd/berth/internal/memrelease"
	"github.com/berthd/berth/inventory"
	"github.com/berthd/berth/network"
	"github.com/berthd/berth/network/dns"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/registry/imagewire"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/phasetrace"
	"github.com/berthd/berth/runtime/shim"
	"github.com/berthd/berth/store"
	"github.com/berthd/berth/sysinfo"
	"github.com/berthd/berth/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/reexec"
	"github.com/sirupsen/logrus"
	storagereexec "go.podman.io/storage/pkg/reexec"
)

const (
	// apiVersion is the version of github.com/moby/moby/api in go.mod.
	apiVersion    = "1.56"
	minAPIVersion = "1.24"
)

func main() {
	// containers/storage re-executes itself to unpack layers in a chroot,
	// through its own reexec registry.
	if reexec.Init() || storagereexec.Init() {
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
	if err := run(cfg, os.Args[1:]); err != nil {
		logrus.Error(err)
		os.Exit(1)
	}
}

func run(cfg *config, args []string) (retErr error) {
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	level, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("invalid --log-level: %w", err)
	}
	if cfg.Debug {
		level = logrus.DebugLevel
	}
	logrus.SetLevel(level)

	if !cfg.LiveRestore {
		logrus.Warn("live-restore is false: berth keeps containers running across daemon restarts all the same")
	}
	sock, err := cfg.socketPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataRoot, 0o711); err != nil {
		return err
	}
	// before anything is made in it (the default socket is in it too)
	serving := false
	if mounted, err := execroot.Prepare(cfg.ExecRoot); err != nil {
		return err
	} else if mounted {
		logrus.Infof("exec root %s was on a disk filesystem: mounted a tmpfs on it", cfg.ExecRoot)
		// a start that fails leaves nothing mounted; once serving, the
		// tmpfs stays as /run would (containers outlive berthd)
		defer func() {
			if retErr != nil && !serving {
				if err := execroot.Undo(cfg.ExecRoot); err != nil {
					logrus.WithError(err).Warn("unmount the exec root of a failed start")
				}
			}
		}()
	} else if inMem, _ := execroot.InMemory(cfg.ExecRoot); !inMem {
		logrus.Warnf("exec root %s is on a disk filesystem and was left so (not empty, or it cannot be locked): its state files cost more, and a reboot does not clear them", cfg.ExecRoot)
	}
	// Listening first is also the check that no other daemon owns the socket;
	// clients that connect while we build simply wait.
	l, err := listenUnix(sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	if err := writePidfile(cfg.Pidfile); err != nil {
		return err
	}
	defer os.Remove(cfg.Pidfile)

	d, err := buildBackend(cfg)
	if err != nil {
		return err
	}
	defer d.close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			d.live.reload(args)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	serving = true
	go func() { errc <- d.server.Serve(l) }()
	logrus.Infof("berthd %s serving API %s on %s (data root %s)", sysinfo.Version, apiVersion, sock, cfg.DataRoot)
	go memrelease.AfterStartup(ctx, memrelease.Settle)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logrus.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.server.Shutdown(sctx)
	return nil
}

// daemon is everything build made, for serving and for closing in order.
type daemon struct {
	server  *engine.Server
	closers []func() error
	live    *live
}

func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			logrus.WithError(err).Warn("shutdown")
		}
	}
}

// build constructs every subsystem and the API server.
func build(cfg *config) (_ *daemon, retErr error) {
	lv, err := newLive(cfg)
	if err != nil {
		return nil, err
	}
	d := &daemon{live: lv}
	defer func() {
		if retErr != nil {
			d.close()
		}
	}()
	db, err := store.Open(filepath.Join(cfg.DataRoot, "berth.db"))
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, db.Close)
	bus := events.New(1024)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// pulls, pushes, loads and saves run containers/image in a helper
	// process each (berth-imagecopy, next to berthd)
	copier := &imagewire.Helper{Binary: filepath.Join(filepath.Dir(self), "berth-imagecopy")}
	if _, err := os.Stat(copier.Binary); err != nil {
		logrus.WithError(err).Warn("image copy helper missing: pulls, pushes, loads and saves will fail")
	}
	imgs, err := registry.New(registry.Deps{
		DataRoot:           cfg.DataRoot,
		ExecRoot:           cfg.ExecRoot,
		InsecureRegistries: cfg.InsecureRegistries,
		RegistryMirrors:    cfg.RegistryMirrors,
		Events:             bus,
		Transfers:          copier,
		MaxUploadSize:      cfg.MaxUploadSize,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, imgs.Close)
	d.live.reloadMirrors = imgs.ReloadMirrors
	if n, err := imgs.PayOwedNames(); err != nil {
		logrus.WithError(err).Warn("name the images of interrupted pulls and loads")
	} else if n > 0 {
		logrus.Infof("named %d images of interrupted pulls or loads", n)
	}
	if n, err := imgs.RemoveOrphanLayers(context.Background()); err != nil {
		logrus.WithError(err).Warn("remove layers of interrupted pulls")
	} else if n > 0 {
		logrus.Infof("removed %d layers of interrupted pulls or loads", n)
	}
	vols, err := volume.New(volume.Deps{Root: filepath.Join(cfg.DataRoot, "volumes"), DB: db, Events: bus})
	if err != nil {
		return nil, err
	}

	// the deployment view feeds the DNS scoping plugin, so it exists before
	// the network; it is fed by the runtime once that exists
	tracker, err := compose.NewTracker(compose.TrackerDeps{Events: bus})
	if err != nil {
		return nil, err
	}
	netCfg, err := cfg.networkConfig()
	if err != nil {
		return nil, err
	}
	nets, err := network.New(network.Deps{DB: db, Events: bus, Config: netCfg, DNSPlugins: []dns.Plugin{compose.DNSPlugin(tracker)}})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, nets.Close)
	if err := nets.Up(context.Background()); err != nil {
		return nil, err
	}

	var (
		rtImages   runtime.Images   = imgs
		rtNetworks runtime.Networks = nets
		rtMonitors runtime.Monitors
	)
	if rtMonitors, err = shim.NewMonitors(filepath.Join(filepath.Dir(self), "berth-shim"), &d.live.runtimes); err != nil {
		return nil, err
	}
	if cfg.Debug {
		// the per-phase trace of container lifecycles
		rtImages, rtNetworks, rtMonitors = phasetrace.Wrap(rtImages, rtNetworks, rtMonitors)
	}
	rt, err := runtime.New(runtime.Deps{
		DataRoot:           cfg.DataRoot,
		ExecRoot:           cfg.ExecRoot,
		CgroupParent:       cfg.CgroupParent,
		InitPath:           initBinary(),
		DB:                 db,
		Images:             rtImages,
		Networks:           rtNetworks,
		Volumes:            vols,
		Monitors:           rtMonitors,
		OCI:                &d.live.runtimes,
		Runtimes:           &d.live.runtimes,
		Events:             bus,
		Names:              compose.NameResolver{},
		DNSSearch:          compose.SearchDomains{Zone: cfg.DNSZone, Extra: cfg.DNSSearch},
		LogDefaults:        d.live.logConfig,
		DefaultIpcMode:     containertypes.IpcMode(cfg.DefaultIpcMode),
		CPURealtimePeriod:  cfg.CPURealtimePeriod,
		CPURealtimeRuntime: cfg.CPURealtimeRuntime,
		RestoreHold:        restoreHold(os.Getenv("BERTHD_TEST_RESTORE_HOLD")),
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, rt.Close)
	if err := vols.Reconcile(context.Background(), rt.Exists); err != nil {
		logrus.WithError(err).Warn("reconcile volume references")
	}
	trackCtx, stopTracker := context.WithCancel(context.Background())
	go func() { _ = tracker.Run(trackCtx, rt) }()
	d.closers = append(d.closers, func() error { stopTracker(); return nil })
	deployments, err := newDeployments(db, rt, nets, vols, imgs, bus)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, restoreInBackground(rt, nets, deployments))

	info, err := sysinfo.New(sysinfo.Deps{
		DataRoot:           cfg.DataRoot,
		APIVersion:         apiVersion,
		MinAPIVersion:      minAPIVersion,
		InsecureRegistries: cfg.InsecureRegistries,
		RegistryMirrors:    cfg.RegistryMirrors,
		LogDrivers:         logdriver.Names,
		Live:               d.live,
		RuntimeName:        "runc",
		RuntimePath:        "runc",
		RuntimeVersion:     runcVersion(),
		InitBinary:         initBinary(),
		Containers:         rt,
		Images:             imgs,
		Events:             bus,
	})
	if err != nil {
		return nil, err
	}
	inv, err := inventory.New(inventory.Deps{
		DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, CgroupParent: cfg.CgroupParent,
		MonitorBinary: "berth-shim", Network: nets, Containers: rt,
	})
	if err != nil {
		return nil, err
	}
	// BuildKit runs in berth-buildkitd, started on the first build; RUN
	// steps are on the default bridge, under berth's DNS server there
	helper := wire.Config{Root: filepath.Join(cfg.DataRoot, "buildkit"), Network: true, CgroupParent: cfg.CgroupParent, Debug: cfg.Debug}
	if gw := nets.DNSServer("bridge"); gw.IsValid() {
		helper.DNS.Nameservers, helper.HostGateway = []string{gw.String()}, gw.String()
	}
	// steps a killed helper left (the helper's own start removes them too)
	steps.Recover(context.Background(), helper.Root, helper.CgroupParent)
	bk, err := bkremote.New(bkremote.Config{
		Binary:  filepath.Join(filepath.Dir(self), "berth-buildkitd"),
		RunDir:  filepath.Join(cfg.ExecRoot, "buildkit"),
		Helper:  helper,
		Images:  imgs,
		Network: nets.BuildSandboxes(),
		// a daemon that builds now and then gets BuildKit's memory back
		IdleTimeout: 10 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, bk.Close)
	df, err := sysinfo.NewDiskUsage(sysinfo.DiskUsageSources{
		Images: imgs.DiskUsage,
		Containers: func(ctx context.Context) ([]containertypes.Summary, error) {
			return rt.List(ctx, runtime.ListOptions{All: true, Size: true})
		},
		Volumes:    vols.DiskUsage,
		BuildCache: bk.DiskUsage,
	})
	if err != nil {
		return nil, err
	}
	bld, err := builder.New(rt, imgs, filepath.Join(cfg.DataRoot, "build"), registry.UploadLimit{Max: cfg.MaxUploadSize})
	if err != nil {
		return nil, err
	}
	d.server = engine.New(engine.Config{APIVersion: apiVersion, MinAPIVersion: minAPIVersion, GRPC: bk},
		system.New(info, bus, df),
		containers.New(rt),
		images.New(imgs),
		volumes.New(vols),
		networks.New(nets, rt),
		composerouter.New(deployments),
		debug.New(inv),
		buildrouter.New(bld, bk),
		session.New(bk),
		unused.New(),
	)
	return d, nil
}

// restoreInBackground restores the containers while the API is served
// (runtime's "The restore phase" says what a request sees meanwhile): the
// runtime's restore, then the network layer drops what nobody restored,
// then restart policies run, then the deployments' supervisor starts. It
// returns the closer, which waits for the restore (a restore cut short
// would take live containers for dead ones) and stops the supervisor.
func restoreInBackground(rt *runtime.Service, nets *network.Manager, deployments *compose.Manager) func() error {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		began := time.Now()
		rt.Restore(context.WithoutCancel(ctx))
		if err := nets.RestoreDone(context.WithoutCancel(ctx)); err != nil {
			logrus.WithError(err).Warn("release network state of containers gone while berthd was down")
		}
		// restart policies run once the network has dropped what nobody restored
		rt.AutoStart(context.WithoutCancel(ctx))
		logrus.Infof("restore phase over in %v", time.Since(began).Round(time.Millisecond))
		if ctx.Err() == nil {
			deployments.Run(ctx)
		}
	}()
	return func() error { stop(); <-done; return nil }
}

// restoreHold is the test seam of the restore (runtime.Deps.RestoreHold):
// with BERTHD_TEST_RESTORE_HOLD naming a FIFO, the restore begins only once
// a test opens it for writing. Without it, nothing.
func restoreHold(fifo string) func(context.Context) {
	if fifo == "" {
		return nil
	}
	return func(context.Context) {
		logrus.Infof("restore held until %s is opened for writing", fifo)
		f, err := os.Open(fifo) // a FIFO's open waits for its writer
		if err != nil {
			logrus.WithError(err).Warn("restore hold")
			return
		}
		_ = f.Close()
	}
}

// initBinary is the init for --init: tini (static) or catatonit from Debian.
func initBinary() string {
	for _, p := range []string{"/usr/bin/tini-static", "/usr/bin/tini", "/usr/bin/catatonit"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func runcVersion() string {
	out, err := execOutput("runc", "--version")
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(out, "\n")
	return strings.TrimPrefix(first, "runc version ")
}
