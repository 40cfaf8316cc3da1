//go:build berth_kube_e2e

package kubee2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a process's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shopFollowLogs: `docker compose logs -f worker` and `berth compose logs
// -f` follow a replica that starts after the follow began (worker scaled
// from 3 to 4): both print worker-4's log (kwok's simulated line).
func shopFollowLogs(t *testing.T, c *cluster, d *dockerCLI, sock string) {
	berth := envPath(t, "BERTH", "") // the berth CLI (scripts/e2e-kube.sh builds it)
	file := filepath.Join(d.dir, "shop", "compose.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// each follower is killed (the context) and waited for when this returns
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	follow := func(bin string, args ...string) (*lockedBuffer, <-chan struct{}) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = d.env
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		must(t, cmd.Start())
		ended := make(chan struct{})
		wg.Go(func() { _ = cmd.Wait(); close(ended) })
		return out, ended
	}
	dockerOut, dockerEnded := follow(d.docker, "compose", "-p", "shop", "-f", file, "logs", "-f", "worker")
	berthOut, berthEnded := follow(berth, "-H", "unix://"+sock, "compose", "logs", "-f", "-p", "shop")
	// both follow the three workers before the fourth starts
	for _, o := range []*lockedBuffer{dockerOut, berthOut} {
		waitFor(t, "the followers print worker-3's log", time.Minute, func() error {
			if !hasReplicaLine(o.String(), "worker-3", "kwok says hello from the container log") {
				return fmt.Errorf("no worker-3 line yet:\n%s", o.String())
			}
			return nil
		})
	}
	start := time.Now()
	d.compose("shop", "up", "-d", "--scale", "worker=4")
	waitRunning(t, c, "shop", []string{"db-1", "web-1", "worker-1", "worker-2", "worker-3", "worker-4"})
	// a new line of kwok's log, after worker-4's start: a replica followed
	// from its start (since its start time, as both ask) gets it; the
	// file's first line is older
	f, err := os.OpenFile(c.webLog, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(criLog(laterLine))
	must(t, err)
	must(t, f.Close())
	for name, o := range map[string]*lockedBuffer{"docker compose logs -f": dockerOut, "berth compose logs -f": berthOut} {
		waitFor(t, name+" prints worker-4's log", time.Minute, func() error {
			if !hasReplicaLine(o.String(), "worker-4", laterLine) {
				return fmt.Errorf("%s: no worker-4 line:\n%s", name, o.String())
			}
			return nil
		})
	}
	t.Logf("measured: a replica started during logs -f: its line printed %v after up", time.Since(start).Round(time.Millisecond))
	for name, ended := range map[string]<-chan struct{}{"docker compose logs -f": dockerEnded, "berth compose logs -f": berthEnded} {
		select {
		case <-ended:
			t.Errorf("%s ended while its replicas run", name)
		default:
		}
	}
}

const laterLine = "kwok says hello again"

// hasReplicaLine says whether out has the log line text with the
// replica's prefix (compose: "worker-4  | ...", berth: "worker-4 ...").
func hasReplicaLine(out, replica, text string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, replica) && strings.Contains(line, text) {
			return true
		}
	}
	return false
}
