package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/runtime"
)

func shopPods() []corev1.Pod {
	foreign := replica("shop", "db", "9", t0, running(t0), true)
	foreign.Labels = map[string]string{"app": "not-berth"} // not berth's: never listed
	return []corev1.Pod{
		replica("shop", "db", "1", t0.Add(-3*time.Minute), running(t0.Add(-2*time.Minute)), true),
		replica("shop", "worker", "1", t0.Add(-2*time.Minute), running(t0.Add(-time.Minute)), false),
		replica("shop", "worker", "2", t0.Add(-time.Minute), exited(3, t0.Add(-10*time.Second)), false),
		replica("blog", "db", "1", t0.Add(-4*time.Minute), running(t0.Add(-4*time.Minute)), true),
		foreign,
	}
}

func TestListFromPods(t *testing.T) {
	b, _ := newBackend(t, shopPods()...)
	for _, tc := range []struct {
		name    string
		all     bool
		filters string
		want    []string
	}{
		{"running only, newest first", false, "", []string{"/shop-worker-1", "/shop-db-1", "/blog-db-1"}},
		{"all", true, "", []string{"/shop-worker-2", "/shop-worker-1", "/shop-db-1", "/blog-db-1"}},
		{"compose project", true, `{"label":["com.docker.compose.project=shop","com.docker.compose.oneoff=False"]}`, []string{"/shop-worker-2", "/shop-worker-1", "/shop-db-1"}},
		{"compose service", true, `{"label":["com.docker.compose.project=shop","com.docker.compose.service=worker"]}`, []string{"/shop-worker-2", "/shop-worker-1"}},
		{"container number", true, `{"label":["com.docker.compose.container-number=2"]}`, []string{"/shop-worker-2"}},
		{"status exited", false, `{"status":["exited"]}`, []string{"/shop-worker-2"}},
		{"name", true, `{"name":["blog"]}`, []string{"/blog-db-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFilters(t, tc.filters)
			list, err := b.List(context.Background(), runtime.ListOptions{All: tc.all, Filters: f})
			assert.NilError(t, err)
			var names []string
			for _, s := range list {
				names = append(names, s.Names[0])
			}
			assert.DeepEqual(t, names, tc.want)
		})
	}
	_, err := b.List(context.Background(), runtime.ListOptions{Filters: mustFilters(t, `{"ancestor":["x"]}`)})
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
}

func TestInspectStatesAndNames(t *testing.T) {
	b, _ := newBackend(t, shopPods()...)
	ctx := context.Background()
	db, err := b.Inspect(ctx, "shop-db-1", false)
	assert.NilError(t, err)
	assert.Equal(t, db.Name, "/shop-db-1")
	assert.Equal(t, db.State.Status, container.StateRunning)
	assert.Equal(t, db.Config.Labels["com.docker.compose.container-number"], "1")
	assert.Equal(t, db.Config.Labels["com.docker.compose.project.working_dir"], "/src/shop", "compose label kept as annotation")
	_, hasHash := db.Config.Labels["controller-revision-hash"]
	assert.Assert(t, !hasHash, "kubernetes' own labels are not Docker's")
	assert.DeepEqual(t, db.Args, []string{"$HOME"})

	w2, err := b.Inspect(ctx, "shop_worker_2", false)
	assert.NilError(t, err)
	assert.Equal(t, w2.State.Status, container.StateExited)
	assert.Equal(t, w2.State.ExitCode, 3)

	byPrefix, err := b.Inspect(ctx, db.ID[:12], false)
	assert.NilError(t, err)
	assert.Equal(t, byPrefix.Name, "/shop-db-1")

	_, err = b.Inspect(ctx, "shop-db-9", false)
	assert.Assert(t, errdefs.IsNotFound(err), "a pod berth does not own is no container: %v", err)
	assert.ErrorContains(t, err, "No such container: shop-db-9")
}

func TestLogsFromPodLogAPI(t *testing.T) {
	b, cs := newBackend(t, shopPods()...)
	var got *corev1.PodLogOptions
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		g, ok := a.(k8stesting.GenericAction)
		if !ok || a.GetSubresource() != "log" {
			return false, nil, nil
		}
		got = g.GetValue().(*corev1.PodLogOptions)
		return true, &k8sruntime.Unknown{Raw: []byte("2026-12-06T04:59:00.5Z hello\n2026-12-06T04:59:01Z world\n")}, nil
	})
	st, err := b.Logs(context.Background(), "shop-db-1", runtime.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: 2})
	assert.NilError(t, err)
	defer st.Cancel()
	var lines []string
	for l := range st.Lines {
		lines = append(lines, l.Time.UTC().Format(time.RFC3339Nano)+" "+string(l.Line))
	}
	assert.DeepEqual(t, lines, []string{"2026-12-06T04:59:00.5Z hello\n", "2026-12-06T04:59:01Z world\n"})
	assert.Equal(t, got.Follow, true)
	assert.Equal(t, *got.TailLines, int64(2))
	assert.Equal(t, got.Timestamps, true)
	assert.Equal(t, got.Container, "db")
}

func TestRunIsAPodInTheDefaultNamespace(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	cfg := &container.Config{Image: "busybox", Cmd: []string{"sleep", "$X"}, Env: []string{"A=$B"}, Labels: map[string]string{"url": "http://x/y"}}
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "web1", Config: cfg, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	list, err := b.List(ctx, runtime.ListOptions{All: true})
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1)
	assert.Equal(t, list[0].State, container.StateCreated)
	_, err = b.Create(ctx, runtime.CreateRequest{Name: "web1", Config: cfg})
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)

	assert.NilError(t, b.Start(ctx, created.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "web1", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, pod.Spec.Containers[0].Args, []string{"sleep", "$$X"})
	assert.Equal(t, pod.Spec.Containers[0].Env[0].Value, "$$B")
	assert.Equal(t, pod.Annotations["label.berth/url"], "http://x/y")
	assert.Equal(t, pod.Spec.RestartPolicy, corev1.RestartPolicyNever)
	assert.Equal(t, pod.Spec.Containers[0].ImagePullPolicy, corev1.PullIfNotPresent, "docker run pulls only a missing image")
	assert.Equal(t, *pod.Spec.TerminationGracePeriodSeconds, int64(10), "docker stop's 10 s, not Kubernetes' 30")
	assert.Equal(t, pod.ManagedFields[0].Manager, FieldManager)

	// the kubelet runs it
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: running(t0)}}
	_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	assert.NilError(t, err)
	waitFor(t, "the pod running in the informer", func() bool {
		r, err := b.Inspect(ctx, "web1", false)
		return err == nil && r.State.Running
	})
	r, err := b.Inspect(ctx, created.ID, false)
	assert.NilError(t, err)
	assert.Equal(t, r.Config.Labels["url"], "http://x/y")
	err = b.Remove(ctx, "web1", runtime.RemoveOptions{})
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	assert.NilError(t, b.Remove(ctx, "web1", runtime.RemoveOptions{Force: true}))
	_, err = cs.CoreV1().Pods("berth-default").Get(ctx, "web1", metav1.GetOptions{})
	assert.Assert(t, err != nil, "pod still there")
}

func TestRunRefusesWhatAPodCannotTake(t *testing.T) {
	b, _ := newBackend(t)
	for _, hc := range []*container.HostConfig{
		{Binds: []string{"/src:/dst"}},
		{Privileged: true},
		{VolumesFrom: []string{"x"}},
		{NetworkMode: "host"},
		{AutoRemove: true},
	} {
		_, err := b.Create(context.Background(), runtime.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: hc})
		assert.Assert(t, errdefs.IsNotImplemented(err), "%+v: %v", hc, err)
	}
}

// TestEngineServesFromKube drives the real engine handler with this
// backend behind it, as the docker CLI would.
func TestEngineServesFromKube(t *testing.T) {
	b, _ := newBackend(t, shopPods()...)
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...)
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	q := url.Values{"all": {"1"}, "filters": {`{"label":["com.docker.compose.project=shop"]}`}}
	rec := do("GET", "/v1.56/containers/json?"+q.Encode())
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	var list []container.Summary
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	assert.Equal(t, len(list), 3)
	assert.Equal(t, list[0].Names[0], "/shop-worker-2")
	assert.Assert(t, strings.HasPrefix(list[0].Status, "Exited (3)"), list[0].Status)

	rec = do("GET", "/v1.56/containers/shop-db-1/json")
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	var insp container.InspectResponse
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &insp))
	assert.Equal(t, insp.Name, "/shop-db-1")

	rec = do("GET", "/v1.56/containers/nope/json")
	assert.Equal(t, rec.Code, http.StatusNotFound)

	for _, tc := range []struct{ method, path, msg string }{
		{"POST", "/v1.56/containers/shop-db-1/pause", "pause is not supported by the Kubernetes backend"},
		{"GET", "/v1.56/containers/shop-db-1/top", "top is not supported"},
		{"GET", "/v1.56/images/busybox/history", "GET /images/{name:.*}/history is not supported by the Kubernetes backend"},
		{"POST", "/v1.56/volumes/prune", "volume prune is not supported by the Kubernetes backend"},
		{"GET", "/system/df", "GET /system/df is not supported"},
		{"GET", "/v1.56/berth/compose/shop/jobs", "jobs is not supported"},
	} {
		rec := do(tc.method, tc.path)
		assert.Equal(t, rec.Code, http.StatusNotImplemented, "%s %s: %s", tc.method, tc.path, rec.Body.String())
		assert.Assert(t, strings.Contains(rec.Body.String(), tc.msg), "%s %s: %s", tc.method, tc.path, rec.Body.String())
	}
	// berth compose ps: the deployment view of the pods
	rec = do("GET", "/v1.56/berth/compose/ps?project=shop")
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	assert.Assert(t, strings.Contains(rec.Body.String(), `"Name":"shop-worker-2","State":"exited"`), rec.Body.String())
	assert.Equal(t, do("GET", "/_ping").Code, http.StatusOK)
	rec = do("GET", "/version")
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Assert(t, strings.Contains(rec.Body.String(), `"Name":"Kubernetes"`), rec.Body.String())
}

// compose v2's requests through the real engine handler: the create body
// as compose sends it (testdata/create/db.json), the start, the ps.
func TestEngineComposeCreateStartPs(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	body, err := os.ReadFile("../testdata/create/db.json")
	assert.NilError(t, err)
	rec := do("POST", "/v1.51/containers/create?name=shop-db-1", string(body))
	assert.Equal(t, rec.Code, http.StatusCreated, rec.Body.String())
	var created container.CreateResponse
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &created))

	rec = do("POST", "/v1.51/containers/"+created.ID+"/start", "")
	assert.Equal(t, rec.Code, http.StatusNoContent, rec.Body.String())
	q := url.Values{"all": {"1"}, "filters": {`{"label":["com.docker.compose.project=shop","com.docker.compose.oneoff=False"]}`}}
	waitFor(t, "shop-db-1 running in docker compose ps", func() bool {
		rec = do("GET", "/v1.51/containers/json?"+q.Encode(), "")
		var list []container.Summary
		return rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &list) == nil &&
			len(list) == 1 && list[0].ID == created.ID && list[0].State == container.StateRunning &&
			list[0].Labels["com.docker.compose.service"] == "db" && list[0].Labels["com.docker.compose.container-number"] == "1"
	})

	// what a pod cannot take is refused by name
	rec = do("POST", "/v1.51/containers/create?name=shop-db-2", strings.Replace(string(body), `"AutoRemove": false`, `"AutoRemove": true`, 1))
	assert.Equal(t, rec.Code, http.StatusNotImplemented, rec.Body.String())
	assert.Assert(t, strings.Contains(rec.Body.String(), "create option AutoRemove"), rec.Body.String())

	rec = do("POST", "/v1.51/containers/shop-db-1/stop", "")
	assert.Equal(t, rec.Code, http.StatusNoContent, rec.Body.String())
	rec = do("POST", "/v1.51/containers/shop-db-1/wait", "")
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	assert.Assert(t, strings.Contains(rec.Body.String(), `"StatusCode":0`), rec.Body.String())
	rec = do("DELETE", "/v1.51/containers/shop-db-1", "")
	assert.Equal(t, rec.Code, http.StatusNoContent, rec.Body.String())
}

// --stop-timeout is the pod's grace period; one that waits forever cannot be
// expressed and is refused, leaving no pod and no record.
func TestRunStopTimeoutIsTheGracePeriod(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	five := 5
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "slow", Config: &container.Config{Image: "busybox", StopTimeout: &five}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, created.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "slow", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, *pod.Spec.TerminationGracePeriodSeconds, int64(5))

	forever := -1
	_, err = b.Create(ctx, runtime.CreateRequest{Name: "never", Config: &container.Config{Image: "busybox", StopTimeout: &forever}, HostConfig: &container.HostConfig{}})
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
	assert.ErrorContains(t, err, "--stop-timeout -1")
	list, err := b.List(ctx, runtime.ListOptions{All: true})
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1, "the refused create left nothing")
}
