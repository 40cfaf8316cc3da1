//go:build berth_kube_e2e

// Package kubee2e runs berthd's Kubernetes backend (bin/berthd-kube)
// against a real control plane (kube-apiserver, kube-controller-manager,
// kube-scheduler, etcd) with kwok's fake nodes and pod lifecycle, through the
// docker CLI and docker compose v2. It needs the binaries of `make
// kube-tools`, so it has its own build tag and target (make e2e-kube,
// scripts/e2e-kube.sh): `make e2e` runs ./integration/... without the tag,
// where this package has no files. It shares none of package integration's
// helpers (those start berthd's own runtime), so it is its own package.
package kubee2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/berthd/berth/kube"
)

const shopProject = `services:
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      retries: 10
    volumes:
      - db_data:/var/lib/postgresql/data
  web:
    image: nginx:1.27
    depends_on:
      db:
        condition: service_healthy
    ports:
      - "8080:80"
  worker:
    image: busybox
    command: ["sleep", "infinity"]
    deploy:
      replicas: 2
volumes:
  db_data:
`

// blogProject has a db too: its own Service in its own namespace.
const blogProject = `services:
  db:
    image: postgres:16
    volumes:
      - data:/var/lib/postgresql/data
volumes:
  data:
`

// dockerCLI runs the docker CLI (and docker compose as its plugin) against
// berthd's socket.
type dockerCLI struct {
	t      *testing.T
	docker string
	env    []string
	dir    string
}

func newDockerCLI(t *testing.T, sock, dir string) *dockerCLI {
	docker := envPath(t, "DOCKER", "/usr/local/bin/docker")
	compose := envPath(t, "COMPOSE", "")
	cfg := filepath.Join(dir, "docker-config")
	must(t, os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755))
	must(t, os.Symlink(compose, filepath.Join(cfg, "cli-plugins", "docker-compose")))
	return &dockerCLI{t: t, docker: docker, dir: dir, env: append(os.Environ(), "DOCKER_HOST=unix://"+sock,
		"DOCKER_CONFIG="+cfg, "DOCKER_CONTEXT=", "COMPOSE_PROGRESS=plain", "COMPOSE_MENU=false")}
}

func envPath(t *testing.T, name, def string) string {
	p := os.Getenv(name)
	if p == "" {
		p = def
	}
	if p == "" {
		t.Fatalf("%s is not set (scripts/e2e-kube.sh sets it)", name)
	}
	_, err := os.Stat(p)
	must(t, err)
	return p
}

func (d *dockerCLI) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.docker, args...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ok runs the docker CLI, fails the test if it fails, and logs how long it took.
func (d *dockerCLI) ok(args ...string) string {
	d.t.Helper()
	start := time.Now()
	out, err := d.run(args...)
	assert.NilError(d.t, err, "docker %s:\n%s", strings.Join(args, " "), out)
	d.t.Logf("docker %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	return out
}

// compose runs docker compose on project's file in the test dir.
func (d *dockerCLI) compose(project string, args ...string) string {
	d.t.Helper()
	return d.ok(append([]string{"compose", "-p", project, "-f", filepath.Join(d.dir, project, "compose.yaml")}, args...)...)
}

func (d *dockerCLI) writeProject(name, yaml string) {
	must(d.t, os.MkdirAll(filepath.Join(d.dir, name), 0o755))
	must(d.t, os.WriteFile(filepath.Join(d.dir, name, "compose.yaml"), []byte(yaml), 0o644))
}

// startBerthd runs bin/berthd-kube against the cluster on a unix socket in
// dir and waits until it answers.
func startBerthd(t *testing.T, c *cluster, dir string) string {
	bin := envPath(t, "BERTHD_KUBE", "")
	sock := filepath.Join(dir, "berthd.sock")
	c.start("berthd-kube", bin, "--kubeconfig="+c.kubeconfig, "--host=unix://"+sock,
		"--data-root="+filepath.Join(dir, "berthd-root"), "--exec-root="+filepath.Join(dir, "berthd-run"),
		"--pidfile="+filepath.Join(dir, "berthd.pid"))
	return sock
}

func TestKubeE2EShop(t *testing.T) {
	t0 := time.Now()
	c := startCluster(t)
	t.Logf("measured: control plane and a Ready kwok node in %v", time.Since(t0).Round(time.Millisecond))
	zone := startZoneDNS(t, c)
	ctx := context.Background()
	dir := t.TempDir()
	sock := startBerthd(t, c, dir)
	d := newDockerCLI(t, sock, dir)
	waitFor(t, "berthd-kube answers", 2*time.Minute, func() error {
		out, err := d.run("version", "--format", "{{.Server.Version}}")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	// /version names the cluster's version as a component
	version := d.ok("version", "--format", "{{json .Server.Components}}")
	assert.Assert(t, strings.Contains(version, "Kubernetes"), version)

	d.writeProject("shop", shopProject)
	start := time.Now()
	out := d.compose("shop", "up", "-d")
	t.Logf("measured: docker compose -p shop up -d: %v", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"Network shop_default", "Volume shop_db_data", "Container shop-db-1", "Healthy", "Container shop-web-1", "Container shop-worker-2", "Started"} {
		assert.Assert(t, strings.Contains(out, want), "compose up output lacks %q:\n%s", want, out)
	}

	// what the API server holds
	ns, err := c.cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ns.Labels[kube.LabelManagedBy], kube.ManagedBy)
	assert.DeepEqual(t, replicas(t, c, "shop"), map[string]int32{"db": 1, "web": 1, "worker": 2})
	assert.DeepEqual(t, serviceNames(t, c, "shop"), []string{"db", "web", "web-published", "worker"})
	waitFor(t, "claim shop/db-data bound", 2*time.Minute, func() error {
		pvc, err := c.cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim is %s", pvc.Status.Phase)
		}
		return nil
	})
	waitRunning(t, c, "shop", []string{"db-1", "web-1", "worker-1", "worker-2"})

	// compose ps and docker ps: the replicas with compose's names
	assert.DeepEqual(t, composePS(t, d, "shop"), map[string]string{"shop-db-1": "running", "shop-web-1": "running", "shop-worker-1": "running", "shop-worker-2": "running"})
	names := strings.Fields(d.ok("ps", "--format", "{{.Names}}"))
	sort.Strings(names)
	assert.DeepEqual(t, names, []string{"shop-db-1", "shop-web-1", "shop-worker-1", "shop-worker-2"})

	// logs and exec through the API server to kwok's simulation: kwok
	// serves a file as every container's log, and runs an exec's command
	// on its own host
	out = d.ok("logs", "shop-web-1")
	assert.Assert(t, strings.Contains(out, "kwok says hello from the container log"), out)
	out = d.ok("compose", "-p", "shop", "-f", filepath.Join(dir, "shop", "compose.yaml"), "logs", "web")
	assert.Assert(t, strings.Contains(out, "kwok says hello from the container log"), out)
	out = d.ok("exec", "shop-db-1", "sh", "-c", "echo exec-in:$(pwd)")
	assert.Assert(t, strings.Contains(out, "exec-in:"+c.execDir), out)
	// kwok reports a command's non-zero exit as an internal error of the
	// exec, not as the exit code a kubelet sends (remotecommand's
	// NonZeroExitCode): berthd answers what it answers for an exec that
	// could not run, 126 with the reason
	out, err = d.run("exec", "shop-db-1", "sh", "-c", "exit 3")
	var ee *exec.ExitError
	assert.Assert(t, errors.As(err, &ee), "docker exec: %v\n%s", err, out)
	assert.Equal(t, ee.ExitCode(), 126, out)
	assert.Assert(t, strings.Contains(out, "exit status 3"), out)

	// scale: compose's per-container create of replica 3 scales the StatefulSet
	start = time.Now()
	d.compose("shop", "up", "-d", "--scale", "worker=3")
	waitRunning(t, c, "shop", []string{"db-1", "web-1", "worker-1", "worker-2", "worker-3"})
	t.Logf("measured: scale worker to 3, pods running: %v", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, replicas(t, c, "shop")["worker"], int32(3))
	assert.Equal(t, composePS(t, d, "shop")["shop-worker-3"], "running")

	// an edited file: compose recreates the changed services' replicas
	shopRecreate(t, c, d, shopProject)
	// logs -f picks up a replica that starts meanwhile
	shopFollowLogs(t, c, d, sock)

	// a second project with a db: its own Service in its own namespace,
	// whose endpoints are its own db's pod
	d.writeProject("blog", blogProject)
	d.compose("blog", "up", "-d")
	waitRunning(t, c, "blog", []string{"db-1"})
	shopDB, blogDB := dbEndpoints(t, c, "shop"), dbEndpoints(t, c, "blog")
	assert.Assert(t, shopDB != blogDB, "both projects' db resolve to %s", shopDB)
	checkZoneNames(t, c, zone, shopDB, blogDB)

	// down -v: nothing of either project is left
	start = time.Now()
	d.compose("shop", "down", "-v")
	d.compose("blog", "down", "-v")
	waitFor(t, "nothing berth made is left", 3*time.Minute, func() error { return leftovers(c) })
	t.Logf("measured: down -v of both projects until nothing is left: %v", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, strings.TrimSpace(d.ok("ps", "-a", "-q")), "")
	t.Logf("measured: the whole test before its clean-up: %v", time.Since(t0).Round(time.Millisecond))
}

func replicas(t *testing.T, c *cluster, ns string) map[string]int32 {
	t.Helper()
	sets, err := c.cs.AppsV1().StatefulSets(ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	out := map[string]int32{}
	for _, s := range sets.Items {
		out[s.Name] = *s.Spec.Replicas
	}
	return out
}

func serviceNames(t *testing.T, c *cluster, ns string) []string {
	t.Helper()
	svcs, err := c.cs.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	var names []string
	for _, s := range svcs.Items {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// waitRunning waits until exactly the pods named run in ns and are Ready.
func waitRunning(t *testing.T, c *cluster, ns string, pods []string) {
	t.Helper()
	waitFor(t, "pods "+strings.Join(pods, ",")+" running in "+ns, 3*time.Minute, func() error {
		list, err := c.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var running []string
		var state []string
		for _, p := range list.Items {
			state = append(state, p.Name+":"+string(p.Status.Phase))
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && ready(&p) {
				running = append(running, p.Name)
			}
		}
		slices.Sort(running)
		if !slices.Equal(running, pods) {
			return fmt.Errorf("pods %v", state)
		}
		return nil
	})
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func composePS(t *testing.T, d *dockerCLI, project string) map[string]string {
	t.Helper()
	ps := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(d.compose(project, "ps", "-a", "--format", "json")), "\n") {
		var ct struct{ Name, State string }
		assert.NilError(t, json.Unmarshal([]byte(line), &ct), line)
		ps[ct.Name] = ct.State
	}
	return ps
}

// dbEndpoints is the address the db Service of ns resolves to (its
// EndpointSlice, made by the controller-manager from the Service's
// selector), checked to be the IP of ns's own db pod.
func dbEndpoints(t *testing.T, c *cluster, ns string) string {
	t.Helper()
	ctx := context.Background()
	svc, err := c.cs.CoreV1().Services(ns).Get(ctx, "db", metav1.GetOptions{})
	assert.NilError(t, err)
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	assert.NilError(t, err)
	assert.Equal(t, len(pods.Items), 1, "db Service of %s selects %d pods", ns, len(pods.Items))
	want := pods.Items[0].Status.PodIP
	assert.Assert(t, want != "", "db pod of %s has no IP", ns)
	var got string
	waitFor(t, "endpoints of "+ns+"/db", 2*time.Minute, func() error {
		slices, err := c.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=db"})
		if err != nil {
			return err
		}
		var addrs []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				addrs = append(addrs, e.Addresses...)
			}
		}
		if len(addrs) != 1 || addrs[0] != want {
			return fmt.Errorf("db endpoints %v, want [%s]", addrs, want)
		}
		got = addrs[0]
		return nil
	})
	t.Logf("%s/db -> %s (pod %s)", ns, got, pods.Items[0].Name)
	return got
}

// leftovers says what berth made that still exists: the projects'
// namespaces, or any object labelled as berth's.
func leftovers(c *cluster) error {
	ctx := context.Background()
	owned := metav1.ListOptions{LabelSelector: kube.LabelManagedBy + "=" + kube.ManagedBy}
	var left []string
	for _, ns := range []string{"shop", "blog"} {
		if n, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			left = append(left, "namespace "+ns+" ("+string(n.Status.Phase)+")")
		}
	}
	sets, err := c.cs.AppsV1().StatefulSets("").List(ctx, owned)
	if err != nil {
		return err
	}
	for _, s := range sets.Items {
		left = append(left, "statefulset "+s.Namespace+"/"+s.Name)
	}
	svcs, err := c.cs.CoreV1().Services("").List(ctx, owned)
	if err != nil {
		return err
	}
	for _, s := range svcs.Items {
		left = append(left, "service "+s.Namespace+"/"+s.Name)
	}
	pvcs, err := c.cs.CoreV1().PersistentVolumeClaims("").List(ctx, owned)
	if err != nil {
		return err
	}
	for _, p := range pvcs.Items {
		left = append(left, "claim "+p.Namespace+"/"+p.Name)
	}
	pods, err := c.cs.CoreV1().Pods("").List(ctx, owned)
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		left = append(left, "pod "+p.Namespace+"/"+p.Name)
	}
	if len(left) > 0 {
		return fmt.Errorf("left: %s", strings.Join(left, ", "))
	}
	return nil
}
