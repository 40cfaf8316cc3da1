// Package remote holds the logging drivers that need crypto/tls (syslog's
// tcp+tls, fluentd's tls://): syslog with github.com/RackSec/srslog and
// fluentd with github.com/fluent/fluent-logger-golang, as dockerd writes
// them. crypto/tls costs every process that links it ~70 KiB of memory,
// so only the monitor variant berth-shim-remote links this package, and
// berthd runs that variant only for containers that log to these drivers.
package remote

import "github.com/berthd/berth/runtime/logdriver"

// Factories are this package's drivers.
func Factories() logdriver.Factories {
	return logdriver.Factories{"syslog": openSyslog, "fluentd": openFluentd}
}

// Needs reports whether driver is one of this package's: a container that
// uses it needs the monitor variant that links them.
func Needs(driver string) bool { return driver == "syslog" || driver == "fluentd" }
