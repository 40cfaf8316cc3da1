// Package compose owns deployments: berth's view of compose projects as
// projects -> services -> replicas, derived from the labels docker compose v2
// puts on containers, networks and volumes.
//
// It holds, as pure functions with table tests:
//   - View: container summaries -> deployments; Tracker keeps it current from
//     container events.
//   - Resolve: the container-name fallback every endpoint uses after Docker's
//     own rules (<project>-<service>-<n>, <project>_<service>_<n>, bare
//     <service> when unambiguous).
//   - Scope: per-deployment DNS scoping (see scope.go for the exact rule).
//   - Plan: a compose file -> the networks, volumes and containers compose
//     itself would create, with the same names, labels and config hashes, and
//     the Engine API request for each.
package compose
