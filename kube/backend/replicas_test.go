package backend

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/runtime"
)

func names(t *testing.T, b *Backend, filters string) map[string]container.ContainerState {
	t.Helper()
	list, err := b.List(context.Background(), runtime.ListOptions{All: true, Filters: mustFilters(t, filters)})
	assert.NilError(t, err)
	out := map[string]container.ContainerState{}
	for _, s := range list {
		out[s.Names[0]] = s.State
	}
	return out
}

const shopFilter = `{"label":["com.docker.compose.project=shop","com.docker.compose.oneoff=False"]}`

func waitState(t *testing.T, b *Backend, want map[string]container.ContainerState) {
	t.Helper()
	var got map[string]container.ContainerState
	waitFor(t, "containers "+toString(want), func() bool {
		got = names(t, b, shopFilter)
		return toString(got) == toString(want)
	}, func() string { return "last saw " + toString(got) })
}

func toString(m map[string]container.ContainerState) string {
	var b []byte
	for _, k := range sortedKeys(m) {
		b = append(b, k+"="+string(m[k])+" "...)
	}
	return string(b)
}

// docker compose up, as compose v2 drives it: a create per replica with
// its labels, then starts; ps from the labels; stop, start and rm of
// replicas; down as stops and removes.
func TestComposeUpByCreates(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()

	db, err := b.Create(ctx, composeCreate(t, "db.json", 1))
	assert.NilError(t, err)
	assert.Equal(t, replicasOf(t, cs, "shop", "db"), 0, "a created container does not run")
	_, err = cs.CoreV1().Services("shop").Get(ctx, "db", metav1.GetOptions{})
	assert.NilError(t, err)
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err)
	insp, err := b.Inspect(ctx, "shop-db-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.ID, db.ID)
	assert.Equal(t, insp.State.Status, container.StateCreated)
	assert.Equal(t, insp.Config.Labels["com.docker.compose.container-number"], "1")
	assert.Equal(t, len(insp.Config.Labels["com.docker.compose.config-hash"]), 64)

	assert.NilError(t, b.Start(ctx, db.ID))
	assert.Equal(t, replicasOf(t, cs, "shop", "db"), 1)
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": container.StateRunning})
	insp, err = b.Inspect(ctx, "shop-db-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.ID, db.ID, "the pod is the created container")
	assert.Assert(t, errdefs.IsNotModified(b.Start(ctx, db.ID)))

	var ids []string
	for n := 1; n <= 2; n++ {
		c, err := b.Create(ctx, composeCreate(t, "web-2.json", n))
		assert.NilError(t, err)
		ids = append(ids, c.ID)
	}
	_, err = b.Create(ctx, composeCreate(t, "web-2.json", 1))
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	for _, id := range ids {
		assert.NilError(t, b.Start(ctx, id))
	}
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 2)
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running"})

	// docker compose stop: every replica at once
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []string{"shop-web-1", "shop-web-2"} {
		wg.Go(func() { errs[i] = b.Stop(ctx, n, "", nil) })
	}
	wg.Wait()
	assert.NilError(t, errs[0])
	assert.NilError(t, errs[1])
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 0)
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "exited", "/shop-web-2": "exited"})
	ch, err := b.Wait(ctx, "shop-web-2", "")
	assert.NilError(t, err)
	assert.Equal(t, (<-ch).ExitCode, 0)
	assert.Assert(t, errdefs.IsNotModified(b.Stop(ctx, "shop-web-2", "", nil)))

	// start again, one replica
	assert.NilError(t, b.Start(ctx, "shop-web-1"))
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 1)
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "exited"})

	// docker compose down: stop, then remove every container; the
	// service's objects go with its last one, the volume's claim stays
	err = b.Remove(ctx, "shop-web-1", runtime.RemoveOptions{})
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	assert.NilError(t, b.Stop(ctx, "shop-web-1", "", nil))
	assert.NilError(t, b.Remove(ctx, "shop-web-1", runtime.RemoveOptions{}))
	_, err = cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err, "web-2 is still a container of web")
	assert.NilError(t, b.Remove(ctx, "shop-web-2", runtime.RemoveOptions{}))
	for _, svc := range []string{"web", "www", "web-published"} {
		_, err = cs.CoreV1().Services("shop").Get(ctx, svc, metav1.GetOptions{})
		assert.Assert(t, err != nil, "Service %s left", svc)
	}
	_, err = cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.Assert(t, err != nil, "StatefulSet web left")
	assert.NilError(t, b.Remove(ctx, "shop-db-1", runtime.RemoveOptions{Force: true}))
	_, err = cs.AppsV1().StatefulSets("shop").Get(ctx, "db", metav1.GetOptions{})
	assert.Assert(t, err != nil, "StatefulSet db left")
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err, "docker compose down keeps volumes")
	assert.Check(t, is.Len(names(t, b, shopFilter), 0))
}

// A StatefulSet removes its highest ordinals first: replica 1 cannot stop
// while 2 runs, and says so.
func TestStopLowerReplicaAloneIsRefused(t *testing.T) {
	b, cs := newBackend(t)
	b.stopWindow = 50 * time.Millisecond
	runController(t, cs)
	ctx := context.Background()
	for n := 1; n <= 2; n++ {
		c, err := b.Create(ctx, composeCreate(t, "web-2.json", n))
		assert.NilError(t, err)
		assert.NilError(t, b.Start(ctx, c.ID))
	}
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "running", "/shop-web-2": "running"})
	err := b.Stop(ctx, "shop-web-1", "", nil)
	assert.Assert(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "removes the highest first")
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 2)

	// the refused stop left no mark: stopping 2 stops only 2
	assert.NilError(t, b.Kill(ctx, "shop-web-2", "SIGKILL"))
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 1)
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "running", "/shop-web-2": "exited"})
	r, err := b.Inspect(ctx, "shop-web-2", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.ExitCode, 137)
	err = b.Kill(ctx, "shop-web-2", "")
	assert.Assert(t, errdefs.IsConflict(err), "killing a stopped container: %v", err)
	err = b.Kill(ctx, "shop-web-1", "SIGHUP")
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
}

var _ = fake.NewClientset
