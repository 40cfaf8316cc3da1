//go:build soak

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestSoakComposeUpDown runs `docker compose up -d` / `down` of the
// compose-bench project SOAK_CYCLES times (default 200; `make soak`) and
// checks that nothing leaks: mounts, netns, veths, iptables rules, cgroups,
// monitors, addresses, DNS records, and berthd's own files, goroutines and
// memory (RSS after a warm-up against the end, both printed).
func TestSoakComposeUpDown(t *testing.T) {
	cycles := 200
	if v := os.Getenv("SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		assert.NilError(t, err, "SOAK_CYCLES")
		cycles = n
	}
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	d.InstallCompose(t)
	b, err := os.ReadFile("/work/shared/anchors/compose-bench/compose.yaml")
	assert.NilError(t, err)
	file := filepath.Join(t.TempDir(), "compose.yaml")
	assert.NilError(t, os.WriteFile(file, b, 0o644))

	cycle := func() {
		d.ComposeOK(t, "-p", "soak", "-f", file, "up", "-d")
		d.ComposeOK(t, "-p", "soak", "-f", file, "down", "-t", "0")
	}
	warm := min(20, cycles/10+1)
	for i := 0; i < warm; i++ {
		cycle()
	}
	waitEmpty(t, d)
	first := d.Inventory(t)
	t.Logf("after %d warm-up cycles: RSS %.1f MiB, %d fds, %d goroutines, %d mounts, %d rules",
		warm, mib(first.RSSBytes), first.FDs, first.Goroutines, len(first.Mounts), len(first.Rules))
	began := time.Now()
	for i := 1; i <= cycles; i++ {
		cycle()
		if i%50 == 0 || i == cycles {
			inv := d.Inventory(t)
			t.Logf("cycle %d (%v per cycle): RSS %.1f MiB, %d fds, %d goroutines, monitors %d, veths %d, addresses %d",
				i, (time.Since(began) / time.Duration(i)).Round(time.Millisecond), mib(inv.RSSBytes), inv.FDs, inv.Goroutines,
				len(inv.Monitors), len(inv.Veths), inv.Addresses)
		}
	}
	waitEmpty(t, d)
	last := d.Inventory(t)
	t.Logf("RSS first %.1f MiB, last %.1f MiB; fds %d -> %d; goroutines %d -> %d",
		mib(first.RSSBytes), mib(last.RSSBytes), first.FDs, last.FDs, first.Goroutines, last.Goroutines)
	assert.Check(t, is.DeepEqual(last.Mounts, first.Mounts))
	assert.Check(t, is.DeepEqual(last.Rules, first.Rules))
	assert.Check(t, is.DeepEqual(last.Bridges, first.Bridges))
	assert.Check(t, is.Equal(last.DNSRecords, first.DNSRecords))
	assert.Check(t, last.FDs <= first.FDs+5, "fds %d -> %d", first.FDs, last.FDs)
	assert.Check(t, last.Goroutines <= first.Goroutines+10, "goroutines %d -> %d", first.Goroutines, last.Goroutines)
	assert.Check(t, last.RSSBytes <= first.RSSBytes+first.RSSBytes/4+16<<20, "RSS %.1f -> %.1f MiB", mib(first.RSSBytes), mib(last.RSSBytes))
	st := d.Storage(t)
	assert.Check(t, is.Len(st.Unreferenced, 0))
	assert.Check(t, is.Equal(st.Containers, 0))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
