package runtime

import (
	"context"
	"io"
	"path/filepath"
	"time"

	"github.com/berthd/berth/internal/safe"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/containerd/errdefs"
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
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.logs.stream(ctx, c.rec, opts, func() <-chan struct{} {
		done := make(chan struct{})
		if !c.running() && c.rec.State.Status != "restarting" {
			close(done)
		} else {
			safe.Go("follow logs of "+short(c.rec.ID), func() { s.closeWhenStopped(ctx, c, done) })
		}
		return done
	})
}

// logReader reads containers' logs back (docker logs, attach with logs=1).
// All it needs is where a container's files are and which storage each
// logging driver keeps readable; it knows nothing of the lifecycle: the
// caller says when a followed log ends.
type logReader struct {
	dir      func(id string) string // a container's directory
	readable func(driver, id string, opts map[string]string) (logdriver.Storage, bool)
}

// newLogReader reads the logs under containersDir/<id> as readable says
// (logdriver.Readable).
func newLogReader(containersDir string, readable func(driver, id string, opts map[string]string) (logdriver.Storage, bool)) *logReader {
	return &logReader{dir: func(id string) string { return filepath.Join(containersDir, id) }, readable: readable}
}

// storage is where `docker logs` reads the container's log; ErrNotImplemented
// when its logging driver keeps nothing readable (none, or a driver
// without the dual-logging cache).
func (l *logReader) storage(rec *Record) (string, logfile.Options, error) {
	lc := rec.HostConfig.LogConfig
	st, ok := l.readable(lc.Type, rec.ID, lc.Config)
	if !ok {
		return "", logfile.Options{}, errdefs.ErrNotImplemented.WithMessage("configured logging driver does not support reading")
	}
	return filepath.Join(l.dir(rec.ID), st.Name), logfile.Options{Rotation: st.Rotation, Format: st.Format}, nil
}

// stream delivers rec's log as opts say. With opts.Follow it asks follow
// (only then, and before it returns) for the channel whose closing ends
// the log once the last line is delivered.
func (l *logReader) stream(ctx context.Context, rec *Record, opts LogsOptions, follow func() <-chan struct{}) (*LogStream, error) {
	path, ropts, err := l.storage(rec)
	if err != nil {
		return nil, err
	}
	var done <-chan struct{}
	if opts.Follow {
		done = follow()
	}
	id := rec.ID
	ctx, cancel := context.WithCancel(ctx)
	lines := make(chan LogLine, 64)
	go func() {
		defer close(lines)
		defer safe.Recover("read logs of " + short(id))
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
			logrus.WithError(err).Warnf("read logs of %s", short(id))
		}
	}()
	return &LogStream{Tty: rec.Config.Tty, Lines: lines, Cancel: cancel}, nil
}

// replay writes rec's whole log so far to stdout and stderr (either may be
// nil: that stream is skipped).
func (l *logReader) replay(ctx context.Context, rec *Record, stdout, stderr io.Writer) error {
	path, ropts, err := l.storage(rec)
	if err != nil {
		return err
	}
	ropts.Stdout, ropts.Stderr, ropts.Tail = stdout != nil, stderr != nil, -1
	return logfile.ReadLogs(ctx, path, ropts, func(m logfile.Message) error {
		w := stdout
		if m.Stream == "stderr" {
			w = stderr
		}
		if w == nil {
			return nil
		}
		_, err := w.Write(m.Line)
		return err
	})
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
