package buildkit

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/diff/apply"
	ctdmetadata "github.com/containerd/containerd/v2/core/metadata"
	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/diff/walking"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/metadata"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/executor/resources"
	"github.com/moby/buildkit/executor/runcexecutor"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/network"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	wlabel "github.com/moby/buildkit/worker/label"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// workerDir is the OCI worker's directory under Root, named like
// buildkitd's ("runc-<snapshotter>") so its layout is familiar.
func (s *Service) workerDir(snapshotter string) string {
	return filepath.Join(s.d.Root, "runc-"+snapshotter)
}

func (s *Service) historyPath() string { return filepath.Join(s.d.Root, "history.db") }

// start builds the controller and everything under it. The closers it
// returns release what was opened, also when it fails half-way.
func (s *Service) start(ctx context.Context) (_ *control.Controller, closers []func() error, _ error) {
	if err := os.MkdirAll(s.d.Root, 0o711); err != nil {
		return nil, nil, err
	}
	// the controller's Info reports the package's version variables
	bv := buildkitVersion()
	version.Version, version.Revision = bv.Version, bv.Revision
	w, wcl, err := s.newWorker(ctx)
	closers = append(closers, wcl...)
	if err != nil {
		return nil, closers, err
	}
	closers = append(closers, w.Close)
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, closers, err
	}
	gwf, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, closers, err
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
		"gateway.v0":    gwf,
	}
	cacheStore, err := bboltcachestorage.NewStore(filepath.Join(s.d.Root, "cache.db"))
	if err != nil {
		return nil, closers, err
	}
	historyDB, err := bolt.Open(s.historyPath(), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, Timeout: 10 * time.Second})
	if err != nil {
		cacheStore.Close()
		return nil, closers, err
	}
	ctl, err := control.NewController(control.Opt{
		SessionManager:   s.sessions,
		WorkerController: wc,
		Frontends:        frontends,
		CacheManager:     solver.NewCacheManager(ctx, "local", cacheStore, worker.NewCacheResultStorage(wc)),
		CacheStore:       cacheStore,
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"local":    localremotecache.ResolveCacheImporterFunc(s.sessions),
			"registry": registryremotecache.ResolveCacheImporterFunc(s.sessions, w.ContentStore(), w.RegistryHosts),
		},
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
			"local":    localremotecache.ResolveCacheExporterFunc(s.sessions),
			"registry": registryremotecache.ResolveCacheExporterFunc(s.sessions, w.RegistryHosts),
		},
		// as dockerd: --network host and devices may be asked for, not
		// security.insecure
		Entitlements:   []string{string(entitlements.EntitlementNetworkHost), string(entitlements.EntitlementDevice)},
		HistoryDB:      historyDB,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
	})
	if err != nil {
		historyDB.Close()
		cacheStore.Close()
		return nil, closers, err
	}
	// the controller's Close closes the worker, cache store and history
	return ctl, closers[:len(closers)-1], nil
}

// newWorker makes the OCI worker: runc for steps, an overlayfs snapshotter
// (native where overlay cannot be mounted), a content store and the
// containerd metadata that ties leases, content and snapshots together.
func (s *Service) newWorker(ctx context.Context) (_ *mobyWorker, closers []func() error, _ error) {
	snName, newSnapshotter := "overlayfs", func(root string) (ctdsnapshot.Snapshotter, error) {
		return overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
	}
	if err := overlayutils.Supported(s.d.Root); err != nil {
		snName, newSnapshotter = "native", native.NewSnapshotter
	}
	root := s.workerDir(snName)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, nil, err
	}
	providers := map[pb.NetMode]network.Provider{
		pb.NetMode_UNSET: network.NewHostProvider(),
		pb.NetMode_HOST:  network.NewHostProvider(),
		pb.NetMode_NONE:  network.NewNoneProvider(),
	}
	netMode := "host"
	if s.d.Network != nil {
		providers[pb.NetMode_UNSET] = bridge{sandboxes: s.d.Network}
		netMode = "bridge"
	}
	rm, err := resources.NewMonitor()
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, rm.Close)
	var dns *oci.DNSConfig
	if d := s.d.DNS; len(d.Nameservers)+len(d.Search)+len(d.Options) > 0 {
		dns = &oci.DNSConfig{Nameservers: d.Nameservers, SearchDomains: d.Search, Options: d.Options}
	}
	exe, err := runcexecutor.New(runcexecutor.Opt{
		Root:                filepath.Join(root, "executor"),
		DNS:                 dns,
		DefaultCgroupParent: s.d.CgroupParent,
		ResourceMonitor:     rm,
	}, providers)
	if err != nil {
		return nil, closers, err
	}
	sn, err := newSnapshotter(filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, closers, err
	}
	closers = append(closers, sn.Close)
	contentDir := filepath.Join(root, "content")
	store, err := local.NewStore(contentDir)
	if err != nil {
		return nil, closers, err
	}
	db, err := bolt.Open(filepath.Join(root, "containerdmeta.db"), 0o644, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true, Timeout: 10 * time.Second})
	if err != nil {
		return nil, closers, err
	}
	mdb := ctdmetadata.NewDB(db, store, map[string]ctdsnapshot.Snapshotter{snName: sn})
	if err := mdb.Init(ctx); err != nil {
		db.Close()
		return nil, closers, err
	}
	md, err := metadata.NewStore(filepath.Join(root, "metadata_v2.db"))
	if err != nil {
		db.Close()
		return nil, closers, err
	}
	cs := containerdsnapshot.NewContentStore(mdb.ContentStore(), "buildkit")
	id, err := base.ID(root)
	if err != nil {
		db.Close()
		md.Close()
		return nil, closers, err
	}
	lm := leaseutil.WithNamespace(ctdmetadata.NewLeaseManager(mdb), "buildkit")
	hostname, _ := os.Hostname()
	opt := base.WorkerOpt{
		ID:   id,
		Root: root,
		Labels: map[string]string{
			wlabel.Executor:       "oci",
			wlabel.Snapshotter:    snName,
			wlabel.Hostname:       hostname,
			wlabel.Network:        netMode,
			wlabel.OCIProcessMode: oci.ProcessSandbox.String(),
		},
		MetadataStore:    md,
		ContentMetadata:  db,
		NetworkProviders: providers,
		Executor:         &reapingExecutor{Executor: exe, cgroupParent: s.d.CgroupParent},
		Snapshotter:      containerdsnapshot.NewSnapshotter(snName, mdb.Snapshotter(snName), "buildkit", nil),
		ContentStore:     cs,
		Applier:          apply.NewFileSystemApplier(cs),
		Differ:           walking.NewWalkingDiff(cs),
		ImageStore:       &localImages{images: s.d.Images, content: cs, leases: lm},
		RegistryHosts:    s.registryHosts,
		Platforms:        []ocispec.Platform{platforms.Normalize(platforms.DefaultSpec())},
		LeaseManager:     lm,
		GarbageCollect:   mdb.GarbageCollect,
		GCPolicy:         gcPolicy,
		MountPoolRoot:    filepath.Join(root, "cachemounts"),
		ResourceMonitor:  rm,
		BuildkitVersion:  buildkitVersion(),
	}
	if s.d.HostGateway != "" {
		// buildx's docker driver reads it for --add-host x:host-gateway
		opt.Labels["org.mobyproject.buildkit.worker.moby.host-gateway-ip"] = s.d.HostGateway
	}
	bw, err := base.NewWorker(ctx, opt)
	if err != nil {
		db.Close()
		md.Close()
		return nil, closers, err
	}
	// the worker's Close closes the metadata, the databases and the monitor
	closers = closers[1:]
	return newMobyWorker(bw, s.d.Images, contentDir, filepath.Join(s.d.Root, "export")), closers, nil
}

// gcPolicy keeps the build cache within bounds between prunes, as dockerd's
// default policy does: sources and cache mounts unused for two days go
// first, then anything past 10 GB.
var gcPolicy = []client.PruneInfo{
	{
		Filter:       []string{"type==source.local,type==exec.cachemount,type==source.git.checkout"},
		KeepDuration: 48 * time.Hour,
		MaxUsedSpace: 512 << 20,
	},
	{All: true, MaxUsedSpace: 10 << 30},
}
