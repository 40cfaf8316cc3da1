package runtime

import (
	"context"
	"time"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/sirupsen/logrus"
)

// LogsOptions are the options of GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time
	Tail           int // -1: all
}

// LogStream delivers log lines until the log (or, when following, the
// container) ends. Cancel stops it early; Lines is closed in any case.
type LogStream struct {
	Tty    bool
	Lines  <-chan LogLine
	Cancel func()
}

// Logs reads a container's log: the json-file or local log, or the
// dual-logging cache of the other drivers; ErrNotImplemented when the
// driver keeps nothing to read (none, cache-disabled). With Follow it ends when the
// container stops (after the last line is delivered) or when cancelled.
func (s *Service) Logs(ctx context.Context, name string, opts LogsOptions) (*LogStream, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	rec := c.rec
	tty := rec.Config.Tty
	path, ropts, err := s.logStorage(rec)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	var done chan struct{}
	if opts.Follow {
		done = make(chan struct{})
		if !c.running() && rec.State.Status != "restarting" {
			close(done)
		} else {
			safe.Go("follow logs of "+short(rec.ID), func() { s.closeWhenStopped(ctx, c, done) })
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	lines := make(chan LogLine, 64)
	go func() {
		defer close(lines)
		defer safe.Recover("read logs of " + short(rec.ID))
		ropts.Stdout, ropts.Stderr, ropts.Since, ropts.Until = opts.Stdout, opts.Stderr, opts.Since, opts.Until
		ropts.Tail, ropts.Follow, ropts.Done = opts.Tail, opts.Follow, done
		err := logfile.ReadLogs(ctx, path, ropts, func(m logfile.Message) error {
			line := LogLine{Stream: m.Stream, Line: append([]byte(nil), m.Line...), Time: m.Time, Attrs: m.Attrs}
			select {
			case lines <- line:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			logrus.WithError(err).Warnf("read logs of %s", rec.ID[:12])
		}
	}()
	return &LogStream{Tty: tty, Lines: lines, Cancel: cancel}, nil
}

// closeWhenStopped closes done once the container is no longer running
// (a restart policy's restart counts as still running).
func (s *Service) closeWhenStopped(ctx context.Context, c *ctr, done chan struct{}) {
	defer close(done)
	for {
		c.mu.Lock()
		ch := c.changed
		stopped := !c.running() && c.rec.State.Status != "restarting"
		c.mu.Unlock()
		if stopped {
			return
		}
		select {
		case <-ch:
		case <-c.removed:
			return
		case <-ctx.Done():
			return
		}
	}
}
