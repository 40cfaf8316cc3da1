package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/runtime"
)

// Container events come from the pod watch: the test is the API server,
// sending watch events through the fake clientset's watch reactor.
func TestEventsFromPodWatch(t *testing.T) {
	old := replica("shop", "db", "1", t0, running(t0), true)
	cs := fake.NewClientset(&old)
	fw := watch.NewFake()
	cs.PrependWatchReactor("pods", k8stesting.DefaultWatchReactor(fw, nil))
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assert.NilError(t, b.Sync(ctx))
	_, live, stop := b.bus.Subscribe(time.Time{})
	defer stop()

	w := replica("shop", "worker", "1", t0, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}, false)
	fw.Add(w.DeepCopy())
	w.Status.ContainerStatuses[0].State = running(t0)
	fw.Modify(w.DeepCopy())
	// the kubelet restarted it between two looks
	w.Status.ContainerStatuses[0].RestartCount = 1
	w.Status.ContainerStatuses[0].LastTerminationState = exited(3, t0)
	fw.Modify(w.DeepCopy())
	w.Status.ContainerStatuses[0].State = exited(2, t0)
	fw.Modify(w.DeepCopy())
	fw.Delete(w.DeepCopy())
	// a pod berth deletes to stop its container is no destroy
	b.quietly(&old)
	fw.Delete(old.DeepCopy())

	want := []string{
		"create shop-worker-1", "start shop-worker-1",
		"die shop-worker-1 exitCode=3", "start shop-worker-1",
		"die shop-worker-1 exitCode=2", "destroy shop-worker-1",
		"die shop-db-1 exitCode=0",
	}
	var got []string
	for len(got) < len(want) {
		select {
		case m := <-live:
			s := string(m.Action) + " " + m.Actor.Attributes["name"]
			if c, ok := m.Actor.Attributes["exitCode"]; ok {
				s += " exitCode=" + c
			}
			assert.Equal(t, m.Type, events.ContainerEventType)
			assert.Equal(t, m.Actor.Attributes["com.docker.compose.project"], "shop", "labels are attributes")
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %q, want %q", got, want)
		}
	}
	assert.DeepEqual(t, got, want)
	select {
	case m := <-live:
		t.Fatalf("one more event: %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

// GET /events is served: docker events replays what berth published.
func TestEventsEndpoint(t *testing.T) {
	b, _ := newBackend(t)
	ctx := context.Background()
	c, err := b.Create(ctx, runtime.CreateRequest{Name: "web1", Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	assert.NilError(t, b.Remove(ctx, c.ID, runtime.RemoveOptions{}))
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...)
	rec := httptest.NewRecorder()
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1.56/events?since=1&until="+until, nil))
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	var actions []string
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	for dec.More() {
		var m events.Message
		assert.NilError(t, dec.Decode(&m))
		assert.Equal(t, m.Actor.ID, c.ID)
		actions = append(actions, string(m.Action))
	}
	assert.DeepEqual(t, actions, []string{"create", "destroy"})
}
