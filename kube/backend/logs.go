package backend

import (
	"bufio"
	"bytes"
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/runtime"
)

// Logs reads a pod's log through the pods/log API: follow, tail and since
// are the API's; the kubelet's timestamps are always asked for and parsed,
// so the router prints Docker's --timestamps from them. The API merges
// stdout and stderr: every line is reported as stdout.
func (b *Backend) Logs(ctx context.Context, ref string, opts runtime.LogsOptions) (*runtime.LogStream, error) {
	if !opts.Until.IsZero() {
		return nil, notImplemented("logs --until")
	}
	p, err := b.lookup(ref)
	if err != nil {
		return nil, err
	}
	lo := &corev1.PodLogOptions{Container: mainContainer(p).Name, Follow: opts.Follow, Timestamps: true}
	if opts.Tail >= 0 {
		lo.TailLines = ptr(int64(opts.Tail))
	}
	if !opts.Since.IsZero() {
		lo.SinceTime = ptr(metav1.NewTime(opts.Since))
	}
	ctx, cancel := context.WithCancel(ctx)
	rc, err := b.c.CoreV1().Pods(p.Namespace).GetLogs(p.Name, lo).Stream(ctx)
	if err != nil {
		cancel()
		return nil, fromAPI(err)
	}
	lines := make(chan runtime.LogLine)
	go func() {
		defer close(lines)
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l := parseLogLine(sc.Bytes())
			if !opts.Stdout {
				continue
			}
			select {
			case lines <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return &runtime.LogStream{Tty: mainContainer(p).TTY, Lines: lines, Cancel: cancel}, nil
}

// parseLogLine splits the kubelet's "<RFC3339Nano> <text>" line; a line
// without a timestamp (a fake, an old kubelet) is kept whole.
func parseLogLine(b []byte) runtime.LogLine {
	l := runtime.LogLine{Stream: "stdout"}
	if ts, rest, ok := bytes.Cut(b, []byte(" ")); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			l.Time, l.Line = t, append(append([]byte(nil), rest...), '\n')
			return l
		}
	}
	l.Line = append(append([]byte(nil), b...), '\n')
	return l
}
