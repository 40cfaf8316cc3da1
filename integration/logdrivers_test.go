package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestLogDriverNone: no log file, `docker logs` and attach-with-logs give
// dockerd's error, the container runs (three times, so a second start of
// the same container is covered), and docker-py's run returns None.
func TestLogDriverNone(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "create", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "hello")
	for i := 0; i < 3; i++ {
		out := d.DockerOK(t, "start", "-a", "quiet")
		assert.Equal(t, strings.TrimSpace(out), "hello", "attached output still flows, start %d", i)
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}", "quiet")), "none|")
	r := d.Docker("logs", "quiet")
	assert.Equal(t, r.ExitCode, 1)
	assert.Check(t, is.Contains(r.Stderr(), "configured logging driver does not support reading"))
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "quiet"))
	ents, err := os.ReadDir(filepath.Join(d.DataRoot, "containers", id))
	assert.NilError(t, err)
	for _, e := range ents {
		assert.Check(t, !strings.Contains(e.Name(), "log"), "no log file: %s", e.Name())
	}

	out := d.DockerPy(t, `
import docker
c = docker.from_env()
print(c.containers.run("busybox", "echo hello", log_config={"type": "none"}, remove=True))
`)
	assert.Equal(t, out, "None")
}

// TestLogDriverLocal: Docker's local format in local-logs/container.log,
// rolled at max-size and compressed by default; docker logs (tail,
// streams, follow) reads it across the rolled files.
func TestLogDriverLocal(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"busybox", "sh", "-c", hundredLines)
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "loc"))
	dir := filepath.Join(d.DataRoot, "containers", id, "local-logs")
	names := func() []string {
		ents, err := os.ReadDir(dir)
		assert.NilError(t, err)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	assert.DeepEqual(t, names(), []string{"container.log", "container.log.1.gz", "container.log.2.gz"})
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.LogPath}}", "loc")), "", "dockerd hides the local driver's path")

	res := d.Docker("logs", "loc")
	assert.Equal(t, res.ExitCode, 0)
	n := consecutive(t, res.Stdout(), 99)
	assert.Check(t, n > 20 && n < 100, "three files' worth: %d", n)
	assert.Equal(t, consecutive(t, d.DockerOK(t, "logs", "--tail", "30", "loc"), 99), 30-1+1, "a tail reaching into the rolled files")
	for i := 0; i < 2; i++ {
		out := d.DockerOK(t, "logs", "--tail", "2", "loc")
		assert.Equal(t, out, "line-98\nline-99\n")
	}
	out := d.DockerOK(t, "logs", "-f", "--tail", "1", "loc")
	assert.Equal(t, out, "line-99\n", "follow of an exited container ends")

	// defaults: 20 MB × 5 compressed, and the container's attributes
	d.DockerOK(t, "run", "--name", "loc2", "--log-driver", "local", "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", "echo hi; echo err >&2")
	res = d.Docker("logs", "--details", "loc2")
	assert.Equal(t, res.Stdout(), "tag=loc2 hi\n")
	assert.Equal(t, res.Stderr(), "tag=loc2 err\n")
	d.DockerOK(t, "run", "-d", "--name", "loc3", "--log-driver", "local", "busybox", "sh", "-c", "echo one; sleep 0.3; echo two; sleep 30")
	waitFor(t, 30*time.Second, func() bool { return d.DockerOK(t, "logs", "loc3") == "one\ntwo\n" })
	d.DockerOK(t, "rm", "-f", "loc3")
}

// TestLogDriverBadInput: an unknown driver and bad options are refused at
// create with dockerd's words (a 400), and nothing is created.
func TestLogDriverBadInput(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-driver", "asdf"}, "logger: no log driver named 'asdf' is registered"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=x"}, "invalid value for max-file: x"},
		{[]string{"--log-driver", "local", "--log-opt", "nope=1"}, "unknown log opt 'nope' for log driver local"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=1"}, "compression cannot be enabled when max file count is 1"},
		{[]string{"--log-opt", "mode=sometimes"}, "logger: logging mode not supported: sometimes"},
		{[]string{"--log-opt", "max-buffer-size=1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=gopher://x"}, "unsupported scheme: 'gopher'"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-facility=nope"}, "invalid syslog facility"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-format=nope"}, "Invalid syslog format"},
		{[]string{"--log-driver", "gelf"}, "gelf-address is a required parameter"},
		{[]string{"--log-driver", "fluentd", "--log-opt", "fluentd-address=unix://"}, "invalid fluentd-address (unix://): path is empty"},
		{[]string{"--log-driver", "syslog", "--log-opt", "cache-disabled=maybe"}, "invalid value for option cache-disabled: maybe"},
	} {
		for i := 0; i < 2; i++ {
			r := d.Docker(append(append([]string{"create", "--name", "bad"}, tc.args...), "busybox", "true")...)
			assert.Equal(t, r.ExitCode, 1, "%v", tc.args)
			assert.Check(t, is.Contains(r.Stderr(), tc.want), "%v", tc.args)
		}
	}
	assert.Equal(t, d.DockerOK(t, "ps", "-aq"), "")

	out := d.DockerPy(t, `
import docker
c = docker.from_env().api
try:
    ctr = c.create_container("busybox", ["true"], host_config=c.create_host_config(log_config=docker.types.LogConfig(type="asdf", config={})))
    c.start(ctr)
    print("created")
except docker.errors.APIError as e:
    print(e.status_code, e.explanation)
`)
	assert.Equal(t, out, "400 logger: no log driver named 'asdf' is registered")
}

// TestLogDriverSyslog: a container per transport (unix stream and datagram
// sockets, udp and tcp on 127.0.0.1) and format, each message with
// dockerd's priority, tag and framing; `docker logs` reads the dual-logging
// cache, and not when cache-disabled.
func TestLogDriverSyslog(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	const stamp = `[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d`
	for _, tc := range []struct {
		network string
		opts    []string
		want    func(id, name string) []string // the two messages: stdout's, then stderr's
	}{
		{"udp", nil, func(id, _ string) []string {
			// no format: the local syslog's, tag = short ID, facility daemon
			return []string{`^<30>` + stamp + ` ` + id[:12] + `\[\d+\]: out$`, `^<27>` + stamp + ` ` + id[:12] + `\[\d+\]: err$`}
		}},
		{"tcp", []string{"syslog-format=rfc3164", "syslog-facility=local3", "tag={{.Name}}"}, func(_, name string) []string {
			return []string{`^<158>` + stamp + ` \S+ ` + name + `\[\d+\]: out$`, `^<155>` + stamp + ` \S+ ` + name + `\[\d+\]: err$`}
		}},
		{"unix", []string{"syslog-format=rfc5424micro", "syslog-facility=user", "tag=web/{{.ImageName}}"}, func(_, _ string) []string {
			ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)`
			return []string{`^<14>1 ` + ts + ` \S+ web/busybox \d+ web/busybox - out$`, `^<11>1 ` + ts + ` \S+ web/busybox \d+ web/busybox - err$`}
		}},
		{"unixgram", []string{"syslog-format=rfc5424", "syslog-facility=17"}, func(id, _ string) []string {
			ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`
			return []string{`^<142>1 ` + ts + ` \S+ ` + id[:12] + ` \d+ ` + id[:12] + ` - out$`, `^<139>1 ` + ts + ` \S+ ` + id[:12] + ` \d+ ` + id[:12] + ` - err$`}
		}},
	} {
		t.Run(tc.network, func(t *testing.T) {
			addr, sink := syslogServer(t, tc.network)
			name := "sys-" + tc.network
			args := []string{"run", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=" + addr}
			for _, o := range tc.opts {
				args = append(args, "--log-opt", o)
			}
			d.DockerOK(t, append(args, "busybox", "sh", "-c", "echo out; echo err >&2")...)
			id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", name))
			got := sink.wait(t, 2)
			assert.Assert(t, is.Len(got, 2))
			for _, re := range tc.want(id, name) {
				rx := regexp.MustCompile(re)
				assert.Check(t, rx.MatchString(got[0]) || rx.MatchString(got[1]), "%s in %q", re, got)
			}
			res := d.Docker("logs", name)
			assert.Equal(t, res.Stdout(), "out\n", "docker logs reads the cache")
			assert.Equal(t, res.Stderr(), "err\n")
		})
	}

	addr, sink := syslogServer(t, "udp")
	d.DockerOK(t, "run", "--name", "nocache", "--log-driver", "syslog", "--log-opt", "syslog-address="+addr,
		"--log-opt", "cache-disabled=true", "busybox", "echo", "hi")
	assert.Check(t, is.Len(sink.wait(t, 1), 1))
	r := d.Docker("logs", "nocache")
	assert.Check(t, is.Contains(r.Stderr(), "configured logging driver does not support reading"))
}

// TestLogDriverDeadEndpoint: blocking mode fails the start with dockerd's
// words and leaves the container created; non-blocking mode starts, never
// blocks on a server that is gone or stalled, keeps the cache, and the
// dropped entries are counted.
func TestLogDriverDeadEndpoint(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	dead := deadAddr(t)
	for i := 0; i < 2; i++ {
		r := d.Docker("run", "--name", "blocked", "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://"+dead, "busybox", "true")
		assert.Check(t, is.Contains(r.Stderr(), "failed to initialize logging driver: dial tcp "+dead+": connect: connection refused"))
		assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "blocked")), "created")
		d.DockerOK(t, "rm", "blocked")
	}

	d.DockerOK(t, "run", "--name", "lossy", "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://"+dead,
		"--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=4k", "busybox", "sh", "-c", hundredLines)
	assert.Equal(t, consecutive(t, d.DockerOK(t, "logs", "lossy"), 99), 100, "the cache has every line")

	// a server that accepts and never reads: 4 MB of output would fill any
	// socket buffer and hold a blocking container forever
	stalled := stalledServer(t)
	done := make(chan string, 1)
	go func() {
		r := d.Docker("run", "--name", "flood", "--log-driver", "syslog", "--log-opt", "syslog-address=unix://"+stalled,
			"--log-opt", "mode=non-blocking", "--log-opt", "cache-max-size=1m", "busybox", "sh", "-c",
			"head -c 4000000 /dev/zero | tr '\\0' x | fold -w 1000; echo finished")
		done <- r.Combined()
	}()
	select {
	case out := <-done:
		assert.Check(t, strings.HasSuffix(out, "finished\n"), "%.200q", out)
	case <-time.After(60 * time.Second):
		t.Fatal("the container blocked on a stalled log server")
	}
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(d.Log(), "dropped") })
	assert.Check(t, is.Regexp(`logging driver syslog dropped \d+ log entries \(mode=non-blocking\)`, d.Log()))
}

// TestLogDriverFluentd: events with dockerd's tag and record (container_id,
// container_name with its "/", source, log, the extra attributes); async
// starts with no server there; blocking fails the start; docker logs reads
// the cache.
func TestLogDriverFluentd(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	addr, events := fluentdServer(t)
	next := func() fluentEvent {
		select {
		case ev := <-events:
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no fluentd event")
		}
		return fluentEvent{}
	}
	d.DockerOK(t, "run", "--name", "fl", "--label", "team=blue", "--log-driver", "fluentd",
		"--log-opt", "fluentd-address="+addr, "--log-opt", "tag=app.{{.Name}}", "--log-opt", "labels=team",
		"--log-opt", "fluentd-sub-second-precision=true", "busybox", "sh", "-c", "echo out; echo err >&2")
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "fl"))
	got := map[string]fluentEvent{}
	for i := 0; i < 2; i++ {
		ev := next()
		got[ev.Record["source"]] = ev
	}
	for stream, line := range map[string]string{"stdout": "out", "stderr": "err"} {
		ev := got[stream]
		assert.Check(t, is.Equal(ev.Tag, "app.fl"))
		assert.Check(t, is.DeepEqual(ev.Record, map[string]string{
			"container_id": id, "container_name": "/fl", "source": stream, "log": line, "team": "blue",
		}))
		assert.Check(t, time.Since(ev.Time) < time.Minute && ev.Time.Nanosecond() != 0, "sub-second time %v", ev.Time)
	}
	res := d.Docker("logs", "fl")
	assert.Equal(t, res.Stdout()+res.Stderr(), "out\nerr\n")

	d.DockerOK(t, "run", "--rm", "--log-driver", "fluentd", "--log-opt", "fluentd-address=tcp://"+addr, "busybox", "echo", "default tag")
	ev := next()
	assert.Check(t, is.Len(ev.Tag, 12), "the short ID: %q", ev.Tag)
	assert.Check(t, is.Equal(ev.Record["log"], "default tag"))

	dead := deadAddr(t)
	r := d.Docker("run", "--name", "flsync", "--log-driver", "fluentd", "--log-opt", "fluentd-address="+dead, "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "failed to initialize logging driver"), r.Combined())
	assert.Check(t, is.Contains(r.Stderr(), "connection refused"), r.Combined())
	for i := 0; i < 2; i++ {
		d.DockerOK(t, "run", "--rm", "--name", "flasync", "--log-driver", "fluentd", "--log-opt", "fluentd-address="+dead,
			"--log-opt", "fluentd-async=true", "busybox", "echo", "nobody listens")
	}
}

// TestLogDriverGELF: GELF 1.1 over udp (gzip, zlib, none) and tcp with
// dockerd's fields; journald says clearly that there is no journal here.
func TestLogDriverGELF(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	host, err := os.Hostname()
	assert.NilError(t, err)
	for _, tc := range []struct {
		network string
		opts    []string
	}{
		{"udp", nil},
		{"udp", []string{"gelf-compression-type=zlib", "gelf-compression-level=9"}},
		{"udp", []string{"gelf-compression-type=none"}},
		{"tcp", []string{"gelf-tcp-max-reconnect=1"}},
	} {
		addr, msgs := gelfServer(t, tc.network)
		args := []string{"run", "--label", "team=blue", "--log-driver", "gelf", "--log-opt", "gelf-address=" + addr, "--log-opt", "labels=team"}
		for _, o := range tc.opts {
			args = append(args, "--log-opt", o)
		}
		cid := filepath.Join(t.TempDir(), "cid")
		d.DockerOK(t, append(args, "--cidfile", cid, "busybox", "sh", "-c", "echo out; echo err >&2")...)
		b, err := os.ReadFile(cid)
		assert.NilError(t, err)
		id := string(b)
		image := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Image}}", id))
		name := strings.TrimPrefix(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Name}}", id)), "/")
		got := map[string]map[string]any{}
		for i := 0; i < 2; i++ {
			select {
			case m := <-msgs:
				got[fmt.Sprint(m["short_message"])] = m
			case <-time.After(30 * time.Second):
				t.Fatalf("%v: no GELF message", tc)
			}
		}
		for line, level := range map[string]float64{"out": 6, "err": 3} {
			m := got[line]
			assert.Assert(t, m != nil, "%v: %v", tc, got)
			created := m["_created"]
			delete(m, "_created")
			ts, _ := m["timestamp"].(float64)
			delete(m, "timestamp")
			assert.Check(t, is.DeepEqual(m, map[string]any{
				"version": "1.1", "host": host, "short_message": line, "level": level,
				"_container_id": id, "_container_name": name, "_image_id": image, "_image_name": "busybox",
				"_command": "sh -c echo out; echo err >&2", "_tag": id[:12], "_team": "blue",
			}), "%v", tc)
			assert.Check(t, created != nil && time.Since(time.Unix(int64(ts), 0)) < time.Minute)
		}
	}

	r := d.Docker("run", "--log-driver", "journald", "busybox", "true")
	assert.Check(t, is.Contains(r.Stderr(), "journald is not enabled on this host"))
	assert.Equal(t, d.DockerOK(t, "ps", "-aq", "--filter", "status=created"), "")
}

// TestLogsFlowWhileBerthdIsDown: the monitor writes the log, so a remote
// driver keeps receiving (and the cache keeps filling) while berthd is
// killed; after the restart docker logs has the lines of the gap.
func TestLogsFlowWhileBerthdIsDown(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	addr, sink := syslogServer(t, "udp")
	d.DockerOK(t, "run", "-d", "--name", "ticker", "--log-driver", "syslog", "--log-opt", "syslog-address="+addr,
		"--log-opt", "syslog-format=rfc5424", "busybox", "sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done")
	sink.wait(t, 1)
	d.Kill(t)
	sink.mu.Lock()
	before := len(sink.msgs)
	sink.mu.Unlock()
	got := sink.wait(t, before+20) // twenty more with no berthd
	assert.Check(t, is.Contains(got[len(got)-1], "tick-"))
	d.Start(t)
	last := got[len(got)-1]
	lastLine := last[strings.LastIndex(last, " ")+1:]
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(d.DockerOK(t, "logs", "ticker"), lastLine+"\n") })
	d.DockerOK(t, "rm", "-f", "ticker")
}

// TestComposeLogging: compose's logging: {driver, options} reaches the
// container, for a remote driver as for the file ones.
func TestComposeLogging(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	addr, sink := syslogServer(t, "tcp")
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(file, []byte(`services:
  web:
    image: busybox
    command: ["echo", "from compose"]
    logging:
      driver: syslog
      options:
        syslog-address: "`+addr+`"
        tag: "{{.Name}}"
  quiet:
    image: busybox
    command: ["echo", "unlogged"]
    logging:
      driver: none
  local:
    image: busybox
    command: ["echo", "kept locally"]
    logging:
      driver: local
`), 0o644))
	d.ComposeOK(t, "-f", file, "-p", "lg", "up", "-d")
	t.Cleanup(func() { d.Compose("-f", file, "-p", "lg", "down", "-t", "0") })
	msgs := sink.wait(t, 1)
	assert.Check(t, is.Regexp(`^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d lg-web-1\[\d+\]: from compose$`, msgs[0]))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "lg-quiet-1")), "none")
	waitFor(t, 30*time.Second, func() bool { return d.DockerOK(t, "logs", "lg-local-1") == "kept locally\n" })
	assert.Equal(t, d.DockerOK(t, "logs", "lg-web-1"), "from compose\n")
}
