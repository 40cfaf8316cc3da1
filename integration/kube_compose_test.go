package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/kube"
	kubebackend "github.com/berthd/berth/kube/backend"
	"github.com/berthd/berth/kube/backend/backendtest"
)

// The real docker compose v2 against the Kubernetes backend: the engine
// handler berthd-kube serves, on a unix socket, over client-go's fake
// clientset with a StatefulSet controller that makes ready pods (no
// kubelet runs anything: this proves the API mapping, not pods). It lives
// here, not in kube/backend, because this package is where the compose
// binary is built first (make e2e after make compose; testenv builds it
// when missing), so the test never needs to skip.
const kubeShop = `services:
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

// kubeEngine serves the Kubernetes backend's engine handler over cs on a
// unix socket in a temp dir, until the test ends.
func kubeEngine(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	return kubeEngineWith(t, cs, kubeEngineOptions{})
}

// kubeEngineOptions are kubeEngineWith's.
type kubeEngineOptions struct {
	wrap func(http.Handler) http.Handler // around the handler
	exec kubebackend.Executor            // pods/exec and pods/attach
}

// kubeEngineWith is kubeEngine with options.
func kubeEngineWith(t *testing.T, cs *fake.Clientset, o kubeEngineOptions) string {
	t.Helper()
	b, err := kubebackend.New(kubebackend.Deps{Client: cs, Exec: o.exec})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, b.Sync(ctx))
	v := kubebackend.Version{Berth: "test", APIVersion: "1.51", MinAPIVersion: "1.24"}
	srv := engine.New(engine.Config{APIVersion: v.APIVersion, MinAPIVersion: v.MinAPIVersion}, b.Routers(v)...)
	sock := filepath.Join(t.TempDir(), "berth-kube.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	h := srv.Handler()
	if o.wrap != nil {
		h = o.wrap(h)
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return sock
}

func TestKubeBackendRealComposeUpPsDown(t *testing.T) {
	bin, err := testenv.ComposeBinary()
	assert.NilError(t, err)
	cs := fake.NewClientset()
	backendtest.RunController(t, cs, time.Now())
	sock := kubeEngine(t, cs)
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(kubeShop), 0o644))
	compose := func(args ...string) string {
		t.Helper()
		out, err := runKubeCompose(bin, sock, dir, "shop", args...)
		assert.NilError(t, err, "docker compose %s:\n%s", strings.Join(args, " "), out)
		t.Logf("docker compose %s:\n%s", strings.Join(args, " "), out)
		return out
	}
	ctx := context.Background()

	start := time.Now()
	out := compose("up", "-d")
	t.Logf("docker compose up -d: %v", time.Since(start))
	for _, want := range []string{"Network shop_default", "Volume shop_db_data", "Container shop-db-1", "Healthy", "Container shop-web-1", "Container shop-worker-2", "Started"} {
		assert.Assert(t, strings.Contains(out, want), "compose up output lacks %q:\n%s", want, out)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ns.Labels[kube.LabelManagedBy], kube.ManagedBy)
	assert.Assert(t, ns.Annotations["network.berth/default"] != "", "the network is not recorded on the namespace: %v", ns.Annotations)
	sets, err := cs.AppsV1().StatefulSets("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	replicas := map[string]int32{}
	for _, s := range sets.Items {
		replicas[s.Name] = *s.Spec.Replicas
	}
	assert.DeepEqual(t, replicas, map[string]int32{"db": 1, "web": 1, "worker": 2})
	svcs, err := cs.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	var names []string
	for _, s := range svcs.Items {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	assert.DeepEqual(t, names, []string{"db", "web", "web-published", "worker"})
	claim, err := cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, claim.Labels["com.docker.compose.volume"], "db_data")

	ps := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(compose("ps", "-a", "--format", "json")), "\n") {
		var c struct {
			Name, State string
			Publishers  []struct{ TargetPort, PublishedPort int }
		}
		assert.NilError(t, json.Unmarshal([]byte(line), &c), line)
		ps[c.Name] = c.State
		if c.Name == "shop-web-1" {
			assert.Equal(t, len(c.Publishers), 1, line)
			assert.Equal(t, c.Publishers[0].PublishedPort, 8080, "web's published port (its Service's): %s", line)
		}
	}
	assert.DeepEqual(t, ps, map[string]string{"shop-db-1": "running", "shop-web-1": "running", "shop-worker-1": "running", "shop-worker-2": "running"})

	// berth's own CLI reads the same project: berth compose ps and logs
	// (the fake clientset's pods/log answers "fake logs")
	berth := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(testenv.BerthCLI(t), append([]string{"-H", "unix://" + sock}, args...)...).CombinedOutput()
		assert.NilError(t, err, "berth %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	out = berth("compose", "ps", "-p", "shop")
	for _, want := range []string{"shop-db-1", "shop-web-1", "shop-worker-2"} {
		assert.Assert(t, strings.Contains(out, want), "berth compose ps lacks %s:\n%s", want, out)
	}
	out = berth("compose", "logs", "-p", "shop", "worker")
	assert.Assert(t, strings.Contains(out, "worker-1  | fake logs") && strings.Contains(out, "worker-2  | fake logs") && !strings.Contains(out, "db-1"), out)

	// a second up finds everything as it is: the images' made-up IDs are
	// stable, so compose recreates nothing (a recreate would be refused)
	out = compose("up", "-d")
	assert.Assert(t, strings.Contains(out, "Container shop-worker-2  Running") && !strings.Contains(out, "Recreate") && !strings.Contains(out, "Creating"), out)
	pub, err := cs.CoreV1().Services("shop").Get(ctx, "web-published", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, pub.Spec.Ports[0].Port, int32(8080))

	// down: containers, workloads and the network go; the claim stays, and
	// the namespace that holds it
	out = compose("down")
	assert.Assert(t, strings.Contains(out, "Network shop_default") && strings.Contains(out, "Removed"), out)
	sets, err = cs.AppsV1().StatefulSets("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(sets.Items), 0)
	svcs, err = cs.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(svcs.Items), 0)
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err, "down without -v removed the volume")
	ns, err = cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ns.Annotations["network.berth/default"], "")
	assert.Equal(t, strings.TrimSpace(compose("ps", "-a", "-q")), "")

	// down -v: the volume goes, and the namespace with nothing left in it
	out = compose("down", "-v")
	assert.Assert(t, strings.Contains(out, "Volume shop_db_data"), out)
	_, err = cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.Assert(t, err != nil, "the empty namespace stayed")
}

// runKubeCompose runs the compose binary against the socket, with the
// project in dir/compose.yaml.
func runKubeCompose(bin, sock, dir, project string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-p", project, "-f", filepath.Join(dir, "compose.yaml")}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+dir, "DOCKER_CONTEXT=", "COMPOSE_PROGRESS=plain", "COMPOSE_MENU=false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// What compose sends that a namespace cannot be is refused by name, and
// nothing is created: an internal network (no NetworkPolicy is made yet).
func TestKubeBackendRealComposeRefusesByName(t *testing.T) {
	bin, err := testenv.ComposeBinary()
	assert.NilError(t, err)
	cs := fake.NewClientset()
	sock := kubeEngine(t, cs)
	dir := t.TempDir()
	project := "services:\n  app:\n    image: busybox\nnetworks:\n  default:\n    internal: true\n"
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(project), 0o644))
	out, err := runKubeCompose(bin, sock, dir, "bad", "up", "-d")
	assert.Assert(t, err != nil, "compose up of an internal network succeeded:\n%s", out)
	assert.Assert(t, strings.Contains(out, "network bad_default: internal is not supported by the Kubernetes backend: no NetworkPolicy is made yet"), out)
	nss, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(nss.Items), 0, "a refused up made a namespace")
	sets, err := cs.AppsV1().StatefulSets(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(sets.Items), 0, "a refused up made a StatefulSet")
}

// compose waits for depends_on: service_healthy by polling the dependency's
// inspect (State.Health): on this backend that is the pod's readiness. db's
// pod runs but is not ready until the test says so; compose must keep
// inspecting it as starting and send web's start only after it is ready
// (and the backend scales web up only then).
func TestKubeBackendRealComposeWaitsForHealthy(t *testing.T) {
	bin, err := testenv.ComposeBinary()
	assert.NilError(t, err)
	cs := fake.NewClientset()
	backendtest.Run(t, cs, backendtest.Options{Started: time.Now(), NotReady: map[string]bool{"db": true}})
	var dbReady atomic.Bool
	early := backendtest.EarlyScaleUps(cs, "shop", "web", &dbReady)
	dbID, webID := kubeContainerID("shop", "db-1"), kubeContainerID("shop", "web-1")
	var mu sync.Mutex
	waiting, earlyStart := 0, false
	sock := kubeEngineWith(t, cs, kubeEngineOptions{wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			switch {
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/"+dbID+"/json"):
				if _, err := cs.Tracker().Get(podsResource, "shop", "db-1"); err == nil && !dbReady.Load() {
					waiting++ // an inspect of db while it runs, not ready
				}
			case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/"+webID+"/start"):
				earlyStart = earlyStart || !dbReady.Load()
			}
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}})
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(kubeShop), 0o644))
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := runKubeCompose(bin, sock, dir, "shop", "up", "-d")
		done <- result{out, err}
	}()
	// compose polls every half second: three inspects of a starting db
	// mean it is waiting for it
	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		n := waiting
		mu.Unlock()
		if n >= 3 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("compose up ended before db was ready (%d inspects of db waiting): %v\n%s", n, r.err, r.out)
		case <-time.After(20 * time.Millisecond):
		}
		assert.Assert(t, time.Now().Before(deadline), "compose did not wait for db (%d inspects)", n)
	}
	ss, err := cs.AppsV1().StatefulSets("shop").Get(context.Background(), "web", metav1.GetOptions{})
	assert.NilError(t, err, "compose creates every container before it starts any")
	assert.Equal(t, *ss.Spec.Replicas, int32(0), "web runs before db is ready")

	dbReady.Store(true)
	assert.NilError(t, backendtest.SetReady(context.Background(), cs, "shop", "db-1", true))
	r := <-done
	assert.NilError(t, r.err, r.out)
	t.Logf("docker compose up -d (db ready by hand): %v\n%s", time.Since(start), r.out)
	assert.Assert(t, strings.Contains(r.out, "Container shop-db-1  Healthy"), r.out)
	mu.Lock()
	assert.Assert(t, !earlyStart, "compose started web before db was ready")
	mu.Unlock()
	assert.DeepEqual(t, early(), []string(nil))
	ss, err = cs.AppsV1().StatefulSets("shop").Get(context.Background(), "web", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, *ss.Spec.Replicas, int32(1))
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// kubeContainerID is the Docker id the backend gives the pod ns/name.
func kubeContainerID(ns, pod string) string {
	sum := sha256.Sum256([]byte(ns + "/" + pod))
	return hex.EncodeToString(sum[:])
}
