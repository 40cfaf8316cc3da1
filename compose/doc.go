// Package compose owns deployments: berth's view of compose projects as
// projects -> services -> replicas, derived from the labels docker compose v2
// puts on containers, networks and volumes.
//
// Pure parts, table-tested:
//   - View: container summaries -> deployments. Tracker keeps it current from
//     an initial list and container events.
//   - Resolve: the container-name fallback every endpoint uses after Docker's
//     own rules (<project>-<service>-<n>, <project>_<service>_<n>, bare
//     <service> when unambiguous); NameResolver is the runtime's NameFallback.
//   - Scope: per-deployment DNS scoping (the exact rule is on Scope);
//     DNSPlugin puts it into the network's DNS chain.
//   - Load + NewPlan: a compose file -> the networks, volumes and containers
//     compose itself would create, with the same names, labels and config
//     hashes, and the Engine API request for each.
//
// Deployer applies plans through the services the Engine API uses (runtime,
// network, volume, registry): berth's native `compose up|down|ps`.
//
// Manager is the service manager over it: a DeploymentRecord per project
// (record.go: model, files, desired replicas, pins, last deploy), up from
// files or the record with pull policies, pins and rolling recreates
// (manager.go, images.go, pull.go), scale (scale.go), the supervisor that
// keeps berth's deployments true and follows the CLI's (supervisor.go),
// merged logs (logs.go), jobs and schedules (jobs.go, scheduler.go,
// xberth.go), deployment events (events.go). Pure parts are table-tested:
// desiredReplicas, scaleDiff, dueTick, parseJobSpec, mustPull, statusOf.
// It is served at /berth/compose/* (engine/router/compose) for the berth
// CLI (cmd/berth).
//
// Config hashes: compose's com.docker.compose.config-hash is the SHA-256 of
// compose-go's JSON encoding of the service, so it depends on compose-go's
// struct layout. berth's go.mod pins the compose-go release that the
// compose CLI of tools/go.mod (ComposeVersion) is built with; the unit tests
// compare with that CLI's `config --hash`, and an integration test compares
// every create request with what that CLI sends.
//
// Wiring (cmd/berthd):
//
//	tracker, _ := compose.NewTracker(compose.TrackerDeps{Events: bus})
//	nets, _ := network.New(network.Deps{..., DNSPlugins: []dns.Plugin{compose.DNSPlugin(tracker)}})
//	rt, _ := runtime.New(runtime.Deps{..., Names: compose.NameResolver{}})
//	go tracker.Run(ctx, rt)
//	mgr, _ := compose.NewManager(compose.ManagerDeps{Containers: rt, Networks: nets, Volumes: vols, Images: imgs, Logs: rt, Puller: ..., Records: ..., Executions: ..., Events: bus})
//	go mgr.Run(ctx) // after rt.AutoStart: the supervisor and the scheduler
//	engine.New(..., composerouter.New(mgr))
package compose
