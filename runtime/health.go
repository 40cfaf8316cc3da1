package runtime

import (
	"bytes"
	"context"
	"encoding/json"
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

// startHealth starts the probe loop of a container that just started; call
// with c.mu held.
func (s *Service) startHealth(c *ctr) {
	hc := c.rec.Config.Healthcheck
	cmd := probeCmd(hc)
	if cmd == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c.health = &healthMonitor{cancel: cancel}
	interval, timeout := orDefault(hc.Interval, defaultProbeInterval), orDefault(hc.Timeout, defaultProbeTimeout)
	startInterval := orDefault(hc.StartInterval, defaultStartInterval)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	started := time.Now()
	s.bgGo(func() {
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
			res := s.probe(ctx, c, cmd, timeout)
			if ctx.Err() != nil {
				return
			}
			inStart = hc.StartPeriod > 0 && res.Start.Sub(started) < hc.StartPeriod
			s.recordProbe(c, res, retries, inStart)
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
func (s *Service) probe(ctx context.Context, c *ctr, cmd []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	c.mu.Lock()
	task, rootfs := c.task, c.rootfs
	base, err := s.processBase(c)
	c.mu.Unlock()
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
	proc, err := execProcess(base, rootfs, container.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		return fail(1, err.Error())
	}
	pj, _ := json.Marshal(proc)
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

// recordProbe applies one result to the container's health.
func (s *Service) recordProbe(c *ctr, res *container.HealthcheckResult, retries int, inStartPeriod bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.rec.State.Health
	if h == nil || c.task == nil {
		return
	}
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	if res.ExitCode == exitStatusHealthy {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if !(inStartPeriod && h.Status == container.Starting) {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	s.saveLogged(c)
	if h.Status != old {
		c.notify()
		s.event(c.rec, events.Action(string(events.ActionHealthStatus)+": "+string(h.Status)), nil)
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
