package shim

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"gotest.tools/v3/assert"
)

// TestMeasureShimPSSPerDriver runs 20 containers per logging driver, each
// logging 2000 lines and then idle, against servers in this process, and
// reports the monitors' PSS per driver (the figure the logging drivers'
// memory is judged by; make bench has the json-file one against dockerd).
// The bound is a leak bound, not the target.
func TestMeasureShimPSSPerDriver(t *testing.T) {
	remoteBin := filepath.Join(env.base, "berth-shim-remote")
	assert.NilError(t, buildShim(remoteBin, false, "berth_remotelog"))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer udp.Close()
	go func() {
		buf := make([]byte, 64*1024)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer tcp.Close()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	info := logdriver.Info{ContainerID: strings.Repeat("a", 64), ContainerName: "c", ImageName: "busybox", Tag: "aaaaaaaaaaaa"}
	for _, tc := range []struct {
		name   string
		bin    string
		driver string
		opts   map[string]string
	}{
		{"json-file", env.shimBin, "json-file", nil},
		{"none", env.shimBin, "none", nil},
		{"local", env.shimBin, "local", nil},
		{"gelf", env.shimBin, "gelf", map[string]string{"gelf-address": "udp://" + udp.LocalAddr().String()}},
		{"syslog", remoteBin, "syslog", map[string]string{"syslog-address": "udp://" + udp.LocalAddr().String()}},
		{"fluentd", remoteBin, "fluentd", map[string]string{"fluentd-address": tcp.Addr().String()}},
		{"fluentd-async", remoteBin, "fluentd", map[string]string{"fluentd-address": tcp.Addr().String(), "fluentd-async": "true"}},
		{"syslog-nonblocking", remoteBin, "syslog", map[string]string{"syslog-address": "udp://" + udp.LocalAddr().String(), "mode": "non-blocking"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pss, anon := measureDriver(t, tc.bin, func(cfg *Config) {
				lc := &logdriver.Config{Driver: tc.driver, Opts: tc.opts, Info: info}
				if st, ok := logdriver.Readable(tc.driver, cfg.ID, tc.opts); ok {
					lc.Path = filepath.Join(cfg.Bundle, st.Name)
				}
				cfg.Log = lc
			})
			t.Logf("%-18s PSS %d KiB per monitor (anon %d KiB)", tc.name, pss, anon)
			assert.Check(t, pss < 4096, "PSS per monitor %d KiB", pss)
		})
	}
}

func measureDriver(t *testing.T, bin string, setLog func(*Config)) (pss, anon int) {
	const n = 20
	clients := make([]*Client, n)
	var wg sync.WaitGroup
	for i := range clients {
		cfg := bundle(t, false, "sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; echo done >&2; exec sleep 600")
		cfg.ShimBinary = bin
		setLog(&cfg)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := testCtx()
			defer cancel()
			c, err := Launch(ctx, cfg)
			if !assert.Check(t, err) {
				return
			}
			assert.Check(t, c.Start(ctx))
			clients[i] = c
		}(i)
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c == nil {
				continue
			}
			ctx, cancel := testCtx()
			c.Kill(ctx, 9)
			c.Wait(ctx)
			c.Release(ctx)
			cancel()
		}
	}()
	if t.Failed() {
		return 0, 0
	}
	// the loops end within a second or two; then the shims trim when idle
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range clients {
		for countTasks(t, c.Pid()) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	for _, c := range clients {
		m := smapsRollup(t, c.ShimPid())
		pss += m["Pss"]
		anon += m["Pss_Anon"]
	}
	_ = context.Background
	return pss / n, anon / n
}
