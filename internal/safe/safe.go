// Package safe keeps the daemon serving when one piece of work panics: a
// panic in a background goroutine would otherwise end the whole process
// (and every container's management with it), a panic in a request would
// cut the client off with no answer. The panic and its stack are logged,
// so the bug is still seen and fixed.
package safe

import (
	"fmt"
	"runtime/debug"

	"github.com/sirupsen/logrus"
)

// Go runs f in a new goroutine that recovers from a panic (see Recover).
func Go(what string, f func()) {
	go func() {
		defer Recover(what)
		f()
	}()
}

// Recover, deferred, stops a panic of the calling goroutine and logs it
// with its stack. what names the work, for the log.
func Recover(what string) {
	if v := recover(); v != nil {
		Log(what, v)
	}
}

// Log logs a recovered panic with the stack of the goroutine that calls it.
func Log(what string, v any) {
	logrus.WithField("panic", fmt.Sprint(v)).Errorf("recovered from a panic in %s (please report this bug):\n%s", what, debug.Stack())
}
