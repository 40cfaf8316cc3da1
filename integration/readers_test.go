package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

// Readers never wait for writers (issue 18): `docker ps` answers from the
// containers' published snapshots, so it does not wait for containers that
// are starting. Each start here is slow: it copies an image VOLUME of
// 10,000 files into a new volume, while holding the container.
func TestContainerPsWhileStartsRun(t *testing.T) {
	const (
		containers = 8
		files      = 10000
	)
	d := testenv.StartDaemon(t)
	content := make(map[string]string, files)
	for i := range files {
		content[fmt.Sprintf("data/d%02d/f%05d", i%50, i)] = "x"
	}
	img, _ := testenv.Image(t, testimage.Options{Tag: "slowstart:latest", Volumes: []string{"/data"}, Files: content, Cmd: []string{"sleep", "300"}})
	d.DockerOK(t, "load", "-q", "-i", img)

	names := make([]string, containers)
	volumes := make([]string, containers)
	for i := range names {
		names[i] = fmt.Sprintf("slow%d", i)
		d.DockerOK(t, "create", "--name", names[i], "slowstart")
		volumes[i] = strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", names[i]))
		assert.Assert(t, volumes[i] != "", "no anonymous volume for %s", names[i])
	}

	// idle: the same ps with nothing starting, for the log (the timing
	// target of issue 18 is a benchmark figure; what this test asserts is
	// that nothing waited)
	idle, _ := timedPs(t, d)

	var (
		wg       sync.WaitGroup
		finished atomic.Int32
		errs     = make([]string, containers)
	)
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			if r := d.Docker("start", name); r.ExitCode != 0 {
				errs[i] = r.Combined()
			}
		}()
	}
	t.Cleanup(wg.Wait)

	// a start is in its slow step once files appear in its volume
	filling := func(p poll.LogT) poll.Result {
		for _, v := range volumes {
			ents, _ := os.ReadDir(filepath.Join(d.DataRoot, "volumes", v, "_data"))
			if len(ents) > 0 {
				return poll.Success()
			}
		}
		if finished.Load() > 0 {
			return poll.Error(fmt.Errorf("a start finished before any copy-up was seen"))
		}
		return poll.Continue("no copy-up under way yet")
	}
	poll.WaitOn(t, filling, poll.WithTimeout(2*time.Minute), poll.WithDelay(5*time.Millisecond))

	took, out := timedPs(t, d)
	began := time.Now()
	r := d.Docker("inspect", "-f", "{{.Name}}", names[0])
	inspectTook := time.Since(began)
	done := finished.Load()
	t.Logf("docker ps: %v, inspect: %v while %d starts ran (idle ps %v)", took, inspectTook, containers-int(done), idle)
	assert.Assert(t, r.ExitCode == 0, "docker inspect: %s", r.Combined())
	assert.Check(t, strings.TrimSpace(r.Stdout()) == "/"+names[0], "inspect says %q", r.Stdout())
	// A reader that waited for a start's lock would answer only after
	// that start: the start would be over and the container shown Up.
	assert.Assert(t, done == 0, "%d starts had finished when ps and inspect answered: they waited for the starts", done)
	for _, name := range names {
		assert.Check(t, strings.Contains(out, name+" Created\n"), "ps does not show %s as created (its start runs):\n%s", name, out)
	}

	wg.Wait()
	for i, e := range errs {
		assert.Assert(t, e == "", "start %s: %s", names[i], e)
	}
	for _, name := range names {
		n := strings.TrimSpace(d.DockerOK(t, "exec", name, "sh", "-c", "find /data -type f | wc -l"))
		assert.Check(t, n == fmt.Sprint(files), "%s has %s files in its volume, want %d", name, n, files)
	}
}

// timedPs runs `docker ps -a` and says how long it took to answer.
func timedPs(t *testing.T, d *testenv.Daemon) (time.Duration, string) {
	t.Helper()
	began := time.Now()
	r := d.Docker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
	took := time.Since(began)
	assert.Assert(t, r.ExitCode == 0, "docker ps: %s", r.Combined())
	return took, r.Stdout()
}
