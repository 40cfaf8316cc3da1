package compose

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// A replica that exits moments after a deploy started it failed to start:
// the deploy says so with its exit code and its last log lines, instead of
// reporting success and leaving the user to find out.

// diagnoseLines is how many of a failed replica's last log lines are kept.
const diagnoseLines = 10

// startWatch remembers the replicas a deploy started.
type startWatch struct {
	mu      sync.Mutex
	started []watched
	last    time.Time
}

type watched struct {
	service string
	number  int
	name    string
	id      string
}

func (w *startWatch) add(service string, number int, name, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = append(w.started, watched{service, number, name, id})
	w.last = time.Now()
}

// diagnose waits until window has passed since the last start and fails
// the deploy for every replica that has exited non-zero by then (or is
// being restarted after such an exit).
func (dp *Deployer) diagnose(ctx context.Context, w *startWatch, window time.Duration, res *UpResult) error {
	w.mu.Lock()
	started, last := append([]watched(nil), w.started...), w.last
	w.mu.Unlock()
	if len(started) == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(last.Add(window))):
	}
	var msgs []string
	for _, s := range started {
		c, err := dp.inspectSettled(ctx, s.id)
		if err != nil || !failedStart(c) {
			continue
		}
		f := ReplicaFailure{Service: s.service, Number: s.number, Container: s.name, ExitCode: c.State.ExitCode, Error: c.State.Error}
		f.Logs = dp.lastLines(ctx, s.id, diagnoseLines)
		res.Failures = append(res.Failures, f)
		msgs = append(msgs, f.String())
	}
	if len(msgs) == 0 {
		return nil
	}
	return errdefs.ErrFailedPrecondition.WithMessage(strings.Join(msgs, "\n"))
}

// inspectSettled inspects a container; one its restart policy has
// restarted is looked at again, for a moment, until it is between two runs,
// where its state has the exit code of the last.
func (dp *Deployer) inspectSettled(ctx context.Context, id string) (*container.InspectResponse, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := dp.d.Containers.Inspect(ctx, id, false)
		if err != nil || c.State == nil || c.State.Status != container.StateRunning || c.RestartCount == 0 || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// failedStart: exited non-zero, dead, or restarted since (its restart
// policy at work within moments of the start).
func failedStart(c *container.InspectResponse) bool {
	if c.State == nil {
		return false
	}
	switch c.State.Status {
	case container.StateDead:
		return true
	case container.StateExited:
		return c.State.ExitCode != 0
	case container.StateRestarting:
		return c.State.ExitCode != 0
	case container.StateRunning:
		return c.RestartCount > 0
	}
	return false
}

func (f ReplicaFailure) String() string {
	msg := fmt.Sprintf("container %s exited (%d) right after it started", f.Container, f.ExitCode)
	if f.Error != "" {
		msg += ": " + f.Error
	}
	if len(f.Logs) > 0 {
		msg += "; its last lines:\n    " + strings.Join(f.Logs, "\n    ")
	}
	return msg
}

// lastLines are a container's last n log lines (stdout and stderr).
func (dp *Deployer) lastLines(ctx context.Context, id string, n int) []string {
	st, err := dp.d.Logs.Logs(ctx, id, runtime.LogsOptions{Stdout: true, Stderr: true, Tail: n})
	if err != nil {
		return nil
	}
	defer st.Cancel()
	var out []string
	for l := range st.Lines {
		out = append(out, strings.TrimRight(string(l.Line), "\r\n"))
	}
	return out
}
