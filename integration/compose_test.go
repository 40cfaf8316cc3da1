package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The compose client itself: built from the Go module proxy by the tools
// module, run as the `docker compose` plugin and as `docker-compose`.
func TestComposeClient(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	out := d.ComposeOK(t, "version", "--short")
	assert.Check(t, is.Equal(strings.TrimSpace(out), compose.ComposeVersion))

	r := d.ComposeStandalone("version")
	assert.NilError(t, r.Error)
	assert.Check(t, is.Contains(r.Stdout(), "v"+compose.ComposeVersion))

	// the plugin is listed by the CLI of this daemon's DOCKER_CONFIG
	out = d.DockerOK(t, "info", "--format", "{{range .ClientInfo.Plugins}}{{.Name}} {{.Version}}{{\"\\n\"}}{{end}}")
	assert.Check(t, is.Contains(out, "compose v"+compose.ComposeVersion))
}

func composeFile(project string) string {
	return filepath.Join(testenv.RepoRoot(), "testdata", "compose", project, "compose.yaml")
}

// composePs is `docker compose ps --format json`, by container name.
func composePs(t *testing.T, d *testenv.Daemon, args ...string) map[string]map[string]any {
	t.Helper()
	out := d.ComposeOK(t, append(args, "ps", "-a", "--format", "json")...)
	ps := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var c map[string]any
		assert.NilError(t, json.Unmarshal([]byte(line), &c), line)
		ps[c["Name"].(string)] = c
	}
	return ps
}

// leftovers lists what still carries the project label.
func leftovers(t *testing.T, d *testenv.Daemon, project string) string {
	t.Helper()
	f := "label=" + compose.LabelProject + "=" + project
	return strings.TrimSpace(d.DockerOK(t, "ps", "-aq", "--filter", f) + d.DockerOK(t, "network", "ls", "-q", "--filter", f) + d.DockerOK(t, "volume", "ls", "-q", "--filter", f))
}

// The app project through its whole life with the real compose CLI.
func TestComposeAppLifecycle(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	f := []string{"-f", composeFile("app")}
	d.ComposeOK(t, append(f, "up", "-d", "--wait")...)

	ps := composePs(t, d, f...)
	assert.Check(t, is.Len(ps, 3))
	for _, name := range []string{"app-web-1", "app-db-1", "app-worker-1"} {
		assert.Check(t, is.Equal(ps[name]["State"], "running"), name)
	}
	assert.Check(t, is.Equal(ps["app-db-1"]["Health"], "healthy"))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--filter", "name=app-db-1", "--format", "{{.Status}}"), "(healthy)"))

	assert.Check(t, is.Contains(d.ComposeOK(t, append(f, "logs", "worker")...), "worker up"))
	assert.Check(t, is.Equal(strings.TrimSpace(d.ComposeOK(t, append(f, "exec", "-T", "web", "wget", "-qO-", "http://db:5432/")...)), "db-ok"))
	assert.Check(t, is.Contains(d.ComposeOK(t, append(f, "exec", "-T", "worker", "cat", "/data/worker.txt")...), "worker up"))

	d.ComposeOK(t, append(f, "restart", "worker")...)
	assert.Check(t, is.Equal(composePs(t, d, f...)["app-worker-1"]["State"], "running"))
	d.ComposeOK(t, append(f, "stop")...)
	for name, c := range composePs(t, d, f...) {
		assert.Check(t, is.Equal(c["State"], "exited"), name)
	}
	d.ComposeOK(t, append(f, "start")...)
	for name, c := range composePs(t, d, f...) {
		assert.Check(t, is.Equal(c["State"], "running"), name)
	}

	d.ComposeOK(t, append(f, "up", "-d", "--scale", "worker=3")...)
	ps = composePs(t, d, f...)
	for _, name := range []string{"app-worker-1", "app-worker-2", "app-worker-3"} {
		assert.Check(t, is.Equal(ps[name]["State"], "running"), name)
	}
	assert.Check(t, is.Contains(d.ComposeOK(t, append(f, "run", "--rm", "worker", "echo", "hi")...), "hi"))

	// a second up with the file's scale removes the extra workers and
	// changes nothing else
	r := d.Compose(append(f, "up", "-d")...)
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, !strings.Contains(r.Stderr(), "Recreate"), r.Stderr())
	for _, name := range []string{"app-web-1", "app-db-1", "app-worker-1"} {
		assert.Check(t, is.Contains(r.Stderr(), "Container "+name+"  Running"))
	}
	assert.Check(t, is.Len(composePs(t, d, f...), 3))

	d.ComposeOK(t, append(f, "down", "-v")...)
	assert.Check(t, is.Equal(leftovers(t, d, "app"), ""))
}

// nslookupAddrs runs nslookup name in a container and returns the answer's
// addresses (busybox prints the server first, then "Name:" and the answers).
func nslookupAddrs(t *testing.T, d *testenv.Daemon, ctr, name string) []string {
	t.Helper()
	r := d.Docker("exec", ctr, "nslookup", name)
	if r.ExitCode != 0 {
		return nil
	}
	var addrs []string
	answers := false
	for _, line := range strings.Split(r.Stdout(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Name:") {
			answers = true
			continue
		}
		if a, ok := strings.CutPrefix(line, "Address:"); ok && answers {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	slices.Sort(addrs)
	return addrs
}

func containerIPs(t *testing.T, d *testenv.Daemon, ctr string) []string {
	t.Helper()
	out := d.DockerOK(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ctr)
	ips := strings.Fields(out)
	slices.Sort(ips)
	return ips
}

// Two deployments with a db each on one shared network: each web gets its
// own db for "db", every time; FQDNs reach across; names resolve.
func TestComposeDeploymentScoping(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	d.DockerOK(t, "network", "create", "berth-shared")
	t.Cleanup(func() { d.Docker("network", "rm", "berth-shared") })
	shop, blog := []string{"-f", composeFile("shop")}, []string{"-f", composeFile("blog")}
	d.ComposeOK(t, append(shop, "up", "-d", "--wait")...)

	// container_name resolution while only shop has a db
	d.DockerOK(t, "exec", "named-db", "true")
	d.DockerOK(t, "logs", "shop-db-1")
	d.DockerOK(t, "exec", "shop_db_1", "true")
	d.DockerOK(t, "exec", "db", "true")

	d.ComposeOK(t, append(blog, "up", "-d", "--wait")...)
	r := d.Docker("exec", "db", "true")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), `ambiguous name "db"`))
	assert.Check(t, is.Contains(r.Stderr(), "named-db (project shop)"))
	assert.Check(t, is.Contains(r.Stderr(), "blog-db-1 (project blog)"))

	shopDB, blogDB := containerIPs(t, d, "named-db"), containerIPs(t, d, "blog-db-1")
	for _, tc := range []struct{ web, want []string }{{[]string{"shop-web-1"}, shopDB}, {[]string{"blog-web-1"}, blogDB}} {
		for i := 0; i < 20; i++ {
			got := nslookupAddrs(t, d, tc.web[0], "db")
			assert.Assert(t, len(got) > 0, "try %d: %s found no db", i, tc.web[0])
			for _, ip := range got {
				assert.Assert(t, slices.Contains(tc.want, ip), "try %d: %s got %v for db, want only %v", i, tc.web[0], got, tc.want)
			}
		}
	}
	// while shop's db is stopped, shop's "db" does not exist: never blog's
	d.DockerOK(t, "stop", "named-db")
	for i := 0; i < 3; i++ {
		assert.Check(t, is.Len(nslookupAddrs(t, d, "shop-web-1", "db"), 0))
	}
	d.DockerOK(t, "start", "named-db")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if st := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Health.Status}}", "named-db")); st != "healthy" {
			return poll.Continue("named-db is %s", st)
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second))
	shopDB = containerIPs(t, d, "named-db")
	for _, ip := range nslookupAddrs(t, d, "shop-web-1", "db") {
		assert.Check(t, slices.Contains(shopDB, ip), "after restart: %s, want %v", ip, shopDB)
	}

	got := nslookupAddrs(t, d, "shop-web-1", "db.blog.berth.internal")
	assert.Check(t, len(got) > 0)
	for _, ip := range got {
		assert.Check(t, slices.Contains(blogDB, ip), "db.blog.berth.internal gave %v, blog's db is %v", got, blogDB)
	}
	worker2 := containerIPs(t, d, "shop-worker-2")
	assert.Check(t, is.DeepEqual(nslookupAddrs(t, d, "blog-web-1", "2.worker.shop.berth.internal"), worker2))

	// the project's events carry its labels
	out := d.DockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "label="+compose.LabelProject+"=shop", "--filter", "type=container", "--format", "{{json .}}")
	var starts int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Action string
			Actor  struct{ Attributes map[string]string }
		}
		assert.NilError(t, json.Unmarshal([]byte(line), &m), line)
		assert.Check(t, is.Equal(m.Actor.Attributes[compose.LabelProject], "shop"))
		assert.Check(t, m.Actor.Attributes[compose.LabelService] != "")
		if m.Action == "start" {
			starts++
		}
	}
	assert.Check(t, is.Equal(starts, 5), "db (twice), web and two workers started")

	d.ComposeOK(t, append(blog, "down")...)
	d.DockerOK(t, "exec", "db", "true")
	d.ComposeOK(t, append(shop, "down")...)
	assert.Check(t, is.Equal(leftovers(t, d, "shop")+leftovers(t, d, "blog"), ""))
}

// berth compose up deploys server-side what docker compose would, so that
// docker compose sees it as its own and has nothing to change.
func TestComposeNativeDeploy(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	file := composeFile("app")
	r := d.Berth(t, "compose", "up", "-f", file, "--wait", "--timeout", "120")
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "Container app-db-1  Started"))

	ps := composePs(t, d, "-p", "app")
	assert.Check(t, is.Len(ps, 3))
	for name, c := range ps {
		assert.Check(t, is.Equal(c["State"], "running"), name)
	}
	r = d.Compose("-f", file, "up", "-d")
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, !strings.Contains(r.Stderr(), "Recreate"), r.Stderr())
	for _, name := range []string{"app-web-1", "app-db-1", "app-worker-1"} {
		assert.Check(t, is.Contains(r.Stderr(), "Container "+name+"  Running"))
	}

	r = d.Berth(t, "compose", "ps", "-f", file)
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "healthy"))
	r = d.Berth(t, "compose", "down", "-p", "app", "-v", "-t", "0")
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Equal(leftovers(t, d, "app"), ""))
}

func writeProject(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(p, []byte(yaml), 0o644))
	return p
}

// Bad input gets a clear error, and down afterwards leaves nothing.
func TestComposeBadInput(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	cases := []struct {
		name, yaml, want string
		wait             bool
	}{
		{name: "cycle", yaml: mustRead(t, composeFile("cycle")), want: "dependency cycle detected"},
		{name: "missingimage", yaml: "services:\n  a:\n    image: berth-test/nope:1\n    pull_policy: never\n", want: "berth-test/nope"},
		{name: "portclash", yaml: "services:\n  a:\n    image: busybox:latest\n    command: [sleep, infinity]\n    ports: [\"127.0.0.1:28080:80\"]\n  b:\n    image: busybox:latest\n    command: [sleep, infinity]\n    ports: [\"127.0.0.1:28080:80\"]\n", want: "already allocated"},
		{name: "unhealthy", wait: true, yaml: "services:\n  a:\n    image: busybox:latest\n    command: [sleep, infinity]\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 200ms\n      retries: 2\n", want: "unhealthy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := []string{"-f", writeProject(t, tc.yaml), "-p", tc.name}
			args := append(f, "up", "-d")
			if tc.wait {
				args = append(args, "--wait", "--wait-timeout", "60")
			}
			r := d.Compose(args...)
			assert.Check(t, r.ExitCode != 0)
			assert.Check(t, is.Contains(r.Combined(), tc.want))
			// by project name alone: a file that does not load cannot say what to remove
			d.ComposeOK(t, "-p", tc.name, "down", "-v", "-t", "0")
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if l := leftovers(t, d, tc.name); l != "" {
					return poll.Continue("left: %s", l)
				}
				return poll.Success()
			}, poll.WithTimeout(30*time.Second))
		})
	}
	r := d.Berth(t, "compose", "up", "-f", composeFile("cycle"))
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "dependency cycle detected: a -> b -> c -> a"))

	// the native path says why a healthcheck failed: the last check's output
	unhealthy := writeProject(t, "services:\n  a:\n    image: busybox:latest\n    command: [sleep, infinity]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"echo not ready; exit 3\"]\n      interval: 200ms\n      retries: 2\n")
	r = d.Berth(t, "compose", "up", "-f", unhealthy, "-p", "sick", "--wait", "--timeout", "60")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "container sick-a-1 is unhealthy: last check exited 3: not ready"))
	r = d.Berth(t, "compose", "down", "-p", "sick", "-v", "-t", "0")
	assert.Check(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Equal(leftovers(t, d, "sick"), ""))
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	return string(b)
}

// Attached `up` streams the services' output and returns when they exit;
// `logs -f` ends when the containers do.
func TestComposeAttachedUpAndFollowLogs(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	f := []string{"-p", "attached", "-f", writeProject(t, "services:\n  hello:\n    image: busybox:latest\n    command: [sh, -c, \"echo hello from compose; sleep 1; echo bye\"]\n")}
	r := d.Compose(append(f, "up", "--abort-on-container-exit")...)
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "hello-1  | hello from compose"))
	assert.Check(t, is.Contains(r.Stdout(), "hello-1  | bye"))

	d.ComposeOK(t, append(f, "up", "-d")...)
	r = d.Compose(append(f, "logs", "-f", "--no-log-prefix")...)
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	assert.Check(t, is.Contains(r.Stdout(), "bye"))
	d.ComposeOK(t, append(f, "down")...)
	assert.Check(t, is.Equal(leftovers(t, d, "attached"), ""))
}
