package main

import "github.com/berthd/berth/runtime/logdriver"

// factories are the logging drivers this monitor writes. The plain build
// has those that need nothing beyond the standard library and small
// libraries; the remote drivers (syslog, fluentd) pull in crypto/tls,
// which costs every monitor ~70 KiB of memory, so they are built into a
// variant (berth-shim-remote, build tag berth_remotelog) that berthd runs
// only for containers that use them.
var factories = logdriver.Builtin()
