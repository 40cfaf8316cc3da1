package runtime

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Health checks are run by berthd itself, as dockerd does: a probe is an
// exec in the container, its exit code decides.

const (
	defaultProbeInterval      = 30 * time.Second
	defaultProbeTimeout       = 30 * time.Second
	defaultStartInterval      = 5 * time.Second
	defaultProbeRetries       = 3
	maxHealthLog              = 5
	maxProbeOutput            = 4096
	exitStatusHealthy         = 0
	exitStatusProbeTimeoutOut = -1
)

// healthChecker runs containers' health checks. It needs a way to run a
// process in a container (the exec part), to save a container's record,
// the events sink, and the daemon's tracker of background work (whose
// context ends every probe loop at shutdown).
type healthChecker struct {
	procs  processPreparer
	save   func(c *ctr) // persist and publish; called with c.mu held
	events Publisher
	bg     func(f func())
	ctx    context.Context
}

// processPreparer gives what a process in c's container needs (see
// execTable.prepare): nil task when the container is not running.
type processPreparer interface {
	prepare(c *ctr, cfg container.ExecCreateRequest) (task Task, rec *Record, process []byte, err error)
}

func newHealthChecker(ctx context.Context, procs processPreparer, save func(*ctr), events Publisher, bg func(func())) *healthChecker {
	return &healthChecker{procs: procs, save: save, events: events, bg: bg, ctx: ctx}
}

type healthMonitor struct {
	cancel context.CancelFunc
}

func (h *healthMonitor) stop() { h.cancel() }

// probeCmd is the command a healthcheck runs, or nil when there is none.
func probeCmd(hc *container.HealthConfig) []string {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		if len(hc.Test) < 2 {
			return nil
		}
		return []string{"/bin/sh", "-c", hc.Test[1]}
	default: // "NONE" and anything unknown
		return nil
	}
}

func initialHealth(rec *Record) *container.Health {
	if probeCmd(rec.Config.Healthcheck) == nil {
		return nil
	}
	return &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
}

// start starts the probe loop of a container that just started; call
// with c.mu held.
func (h *healthChecker) start(c *ctr) {
	hc := c.rec.Config.Healthcheck
	cmd := probeCmd(hc)
	if cmd == nil {
		return
	}
	ctx, cancel := context.WithCancel(h.ctx)
	c.health = &healthMonitor{cancel: cancel}
	interval, timeout := orDefault(hc.Interval, defaultProbeInterval), orDefault(hc.Timeout, defaultProbeTimeout)
	startInterval := orDefault(hc.StartInterval, defaultStartInterval)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	started := time.Now()
	h.bg(func() {
		for {
			wait := interval
			inStart := hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod
			if inStart && hc.StartInterval > 0 {
				wait = startInterval
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			res := h.probe(ctx, c, cmd, timeout)
			if ctx.Err() != nil {
				return
			}
			inStart = hc.StartPeriod > 0 && res.Start.Sub(started) < hc.StartPeriod
			h.record(c, res, retries, inStart)
		}
	})
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// probe runs one check as an exec and returns its result.
func (h *healthChecker) probe(ctx context.Context, c *ctr, cmd []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	task, _, pj, err := h.procs.prepare(c, container.ExecCreateRequest{Cmd: cmd})
	fail := func(code int, msg string) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now(), code, msg
		return res
	}
	if task == nil {
		return fail(1, "container is not running")
	}
	if err != nil {
		return fail(1, err.Error())
	}
	out := &limitedBuffer{max: maxProbeOutput}
	xt, err := task.Exec(ctx, ExecConfig{ID: "health-" + newID()[:16], ProcessJSON: pj, Streams: Streams{Stdout: out, Stderr: out}})
	if err != nil {
		return fail(exitCodeFor(err), err.Error())
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, err := xt.Wait(wctx)
	if err != nil {
		if pid := xt.Pid(); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		if wctx.Err() != nil && ctx.Err() == nil {
			return fail(exitStatusProbeTimeoutOut, fmt.Sprintf("Health check exceeded timeout (%s)", timeout))
		}
		return fail(1, err.Error())
	}
	return fail(code, out.String())
}

// record applies one result to the container's health.
func (h *healthChecker) record(c *ctr, res *container.HealthcheckResult, retries int, inStartPeriod bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.rec.State.Health
	if st == nil || c.task == nil {
		return
	}
	old := st.Status
	st.Log = append(st.Log, res)
	if len(st.Log) > maxHealthLog {
		st.Log = st.Log[len(st.Log)-maxHealthLog:]
	}
	if res.ExitCode == exitStatusHealthy {
		st.FailingStreak = 0
		st.Status = container.Healthy
	} else if !(inStartPeriod && st.Status == container.Starting) {
		st.FailingStreak++
		if st.FailingStreak >= retries {
			st.Status = container.Unhealthy
		}
	}
	h.save(c)
	if st.Status != old {
		c.notify()
		containerEvent(h.events, c.rec, events.Action(string(events.ActionHealthStatus)+": "+string(st.Status)), nil)
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
