package shim

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/berthd/berth/runtime/monitor"
)

func countFDs(t *testing.T, pid string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	assert.NilError(t, err)
	return len(ents)
}

// TestDroppedStreamsLeakNothing opens 200 attach and 200 exec streams and
// drops them every way berthd may (ctx canceled, stdin closed, Exec.Close),
// then checks goroutines and fds here and fds in the shim.
func TestDroppedStreamsLeakNothing(t *testing.T) {
	cfg := bundle(t, false, "sh", "-c", "while true; do echo tick; sleep 0.01; done")
	cfg.OpenStdin = true
	ctx, cancel := testCtx()
	defer cancel()
	c, err := Launch(ctx, cfg)
	assert.NilError(t, err)
	assert.NilError(t, c.Start(ctx))
	shimPid := strconv.Itoa(c.ShimPid())

	settle := func() (int, int, int) {
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		return runtime.NumGoroutine(), countFDs(t, "self"), countFDs(t, shimPid)
	}
	g0, fd0, sfd0 := settle()

	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			actx, acancel := context.WithCancel(ctx)
			defer acancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			attached := make(chan struct{})
			go func() {
				done <- c.Attach(actx, AttachOptions{Streams: monitor.Streams{Stdin: pr, Stdout: io.Discard, Stderr: io.Discard}, OnAttached: func() { close(attached) }})
			}()
			select {
			case <-attached:
			case err := <-done:
				t.Errorf("attach %d: %v", i, err)
				return
			}
			if i%2 == 0 {
				acancel() // berthd's client went away
				pw.Close()
			} else {
				pw.CloseWithError(io.ErrUnexpectedEOF) // the API client's connection broke
				acancel()
			}
			<-done
		}(i)
	}
	wg.Wait()
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, err := c.Exec(ctx, monitor.ExecConfig{ID: "x" + strconv.Itoa(i), ProcessJSON: processJSON(t, false, "sleep", "0.2"), Streams: monitor.Streams{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}})
			if err != nil {
				t.Errorf("exec %d: %v", i, err)
				return
			}
			e.Close()
		}(i)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // the sleeps end; the shim reaps them
	g1, fd1, sfd1 := settle()
	t.Logf("client goroutines %d -> %d, client fds %d -> %d, shim fds %d -> %d", g0, g1, fd0, fd1, sfd0, sfd1)
	assert.Assert(t, g1 <= g0, "goroutines leaked: %d -> %d", g0, g1)
	assert.Equal(t, fd1, fd0)
	assert.Equal(t, sfd1, sfd0)
	stopContainer(t, c, cfg)
}

// TestMeasureLaunchStart times Launch+Start of `true` against a bare
// `runc run` of the same bundle.
func TestMeasureLaunchStart(t *testing.T) {
	const n = 15
	var shim, bare []time.Duration
	for i := 0; i < n; i++ {
		cfg := bundle(t, false, "true")
		cfg.ShimBinary = env.shimBin
		ctx, cancel := testCtx()
		start := time.Now()
		c, err := Launch(ctx, cfg)
		assert.NilError(t, err)
		assert.NilError(t, c.Start(ctx))
		shim = append(shim, time.Since(start))
		_, err = c.Wait(ctx)
		assert.NilError(t, err)
		assert.NilError(t, c.Release(ctx))
		cancel()

		cfg2 := bundle(t, false, "true")
		start = time.Now()
		out, err := exec.Command("runc", "--root", env.runcRoot, "run", "--bundle", cfg2.Bundle, cfg2.ID).CombinedOutput()
		bare = append(bare, time.Since(start))
		assert.NilError(t, err, string(out))
	}
	ms, mb := median(shim), median(bare)
	t.Logf("Launch+Start of `true`: median %v (min %v); bare `runc run` (create+start+wait+delete): median %v", ms, minDur(shim), mb)
	// a hang or a pathological slowdown, not a speed target (those live in
	// make bench): a loaded CI machine must not fail here
	assert.Assert(t, ms < 5*time.Second)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minDur(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = min(m, x)
	}
	return m
}

// TestMeasureShimPSS runs 50 idle containers, each with a Wait in flight as
// berthd holds one, and reports the shims' memory (proportional set size,
// so the shared binary counts once in total).
func TestMeasureShimPSS(t *testing.T) {
	const n = 50
	type ctr struct {
		c   *Client
		cfg Config
	}
	ctrs := make([]ctr, n)
	var wg sync.WaitGroup
	for i := range ctrs {
		cfg := bundle(t, false, "sleep", "600")
		cfg.ShimBinary = env.shimBin // measure the real build, not the race one
		ctrs[i].cfg = cfg
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := testCtx()
			defer cancel()
			c, err := Launch(ctx, ctrs[i].cfg)
			if !assert.Check(t, err) {
				return
			}
			assert.Check(t, c.Start(ctx))
			ctrs[i].c = c
		}(i)
	}
	wg.Wait()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	for _, x := range ctrs {
		if x.c != nil {
			go x.c.Wait(wctx)
		}
	}
	defer func() {
		for _, x := range ctrs {
			if x.c == nil {
				continue
			}
			wg.Add(1)
			go func(x ctr) {
				defer wg.Done()
				ctx, cancel := testCtx()
				defer cancel()
				x.c.Kill(ctx, 9)
				x.c.Wait(ctx)
				x.c.Release(ctx)
			}(x)
		}
		wg.Wait()
	}()
	if t.Failed() {
		return
	}
	time.Sleep(1500 * time.Millisecond)
	var pss, rss, anon int
	threads := 0
	idle := make([]int, n)
	for i, x := range ctrs {
		m := smapsRollup(t, x.c.ShimPid())
		idle[i] = m["Pss"]
		pss += m["Pss"]
		rss += m["Rss"]
		anon += m["Pss_Anon"]
		threads += countTasks(t, x.c.ShimPid())
	}
	t.Logf("%d idle shims: PSS %d KiB per shim (anon %d KiB), RSS %d KiB, %.1f threads", n, pss/n, anon/n, rss/n, float64(threads)/n)
	// a leak bound at twice the measured ~1 MiB, not the target (make bench
	// reports it): the figure wavers with the machine's load
	assert.Assert(t, pss/n < 2048, "PSS per idle shim %d KiB", pss/n)

	// One shim after serving execs: the Go runtime's GC metadata and the
	// threads left from syscalls settle it higher. Not a leak: it levels off.
	busy := ctrs[0].c
	ctx, cancel := testCtx()
	defer cancel()
	for i := 0; i < 300; i++ {
		e, err := busy.Exec(ctx, monitor.ExecConfig{ID: "b" + strconv.Itoa(i), ProcessJSON: processJSON(t, false, "echo", "hi"), Streams: monitor.Streams{Stdout: io.Discard}})
		assert.NilError(t, err)
		_, err = e.Wait(ctx)
		assert.NilError(t, err)
		if i == 150 {
			time.Sleep(1500 * time.Millisecond) // an idle pause: the shim trims
		}
	}
	time.Sleep(1500 * time.Millisecond)
	m := smapsRollup(t, busy.ShimPid())
	total := pss - idle[0] + m["Pss"]
	t.Logf("after 300 execs: that shim's PSS %d KiB (anon %d KiB), %d threads; average over the %d: %d KiB",
		m["Pss"], m["Pss_Anon"], countTasks(t, busy.ShimPid()), n, total/n)
	assert.Assert(t, m["Pss_Anon"] < 4096, "busy shim anon %d KiB", m["Pss_Anon"])
}

func smapsRollup(t *testing.T, pid int) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	assert.NilError(t, err)
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) > 0 {
			m[k], _ = strconv.Atoi(fields[0])
		}
	}
	return m
}

func countTasks(t *testing.T, pid int) int {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	assert.NilError(t, err)
	return len(ents)
}
