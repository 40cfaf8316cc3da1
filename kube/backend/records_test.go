package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/kube"
	"github.com/berthd/berth/runtime"
)

// The created and stopped replicas of compose's containers outlive a
// berthd restart: kept on their StatefulSet, read back by the next
// backend's Sync with the same ids, states and exit codes; starting them
// there works as before, and their records go.
func TestRecordsSurviveRestart(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()
	db, err := b.Create(ctx, composeCreate(t, "db.json", 1))
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, db.ID))
	ids := map[string]string{"shop-db-1": db.ID}
	for n := 1; n <= 3; n++ {
		c, err := b.Create(ctx, composeCreate(t, "web-2.json", n))
		assert.NilError(t, err)
		ids["shop-web-"+string(rune('0'+n))] = c.ID
		if n < 3 {
			assert.NilError(t, b.Start(ctx, c.ID))
		}
	}
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running", "/shop-web-3": "created"})
	assert.NilError(t, b.Kill(ctx, "shop-web-2", "SIGKILL"))
	want := map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "exited", "/shop-web-3": "created"}
	waitState(t, b, want)
	b.persistWG.Wait()
	ss, err := cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Assert(t, ss.Annotations[annotationRecords] != "", "no records kept: %v", ss.Annotations)

	// the next berthd over the same cluster, once the controller has
	// scaled web down (the fake's watch loses a deletion made between an
	// informer's list and its watch; the API server's does not)
	waitFor(t, "the pod of shop-web-2 to go", func() bool {
		_, err := cs.CoreV1().Pods("shop").Get(ctx, "web-2", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	b2 := syncedBackend(t, cs)
	waitState(t, b2, want)
	for name, id := range ids {
		r, err := b2.Inspect(ctx, name, false)
		assert.NilError(t, err)
		assert.Equal(t, r.ID, id, name)
	}
	r, err := b2.Inspect(ctx, "shop-web-2", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.ExitCode, 137)
	assert.Equal(t, r.Config.Labels["com.docker.compose.container-number"], "2")

	// compose's start of replica 3 on it: the StatefulSet runs 1..3
	assert.NilError(t, b2.Start(ctx, ids["shop-web-3"]))
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 3)
	waitState(t, b2, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running", "/shop-web-3": "running"})
	b2.persistWG.Wait()
	ss, err = cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ss.Annotations[annotationRecords], "", "records of running replicas kept")
}

// A berthd that restarts right after a kill may find the killed replica's
// pod still there, above its StatefulSet's replicas (a controller that
// had not seen the scale-down yet made it again): the kept record is the
// replica's once that pod goes, not nothing. The cluster is made by hand
// (no controller), so that the pod goes exactly when the test says.
func TestRecordOfAReplicaBeingScaledAway(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	for n := 1; n <= 2; n++ {
		_, err := b.Create(ctx, composeCreate(t, "web-2.json", n))
		assert.NilError(t, err)
	}
	b.persistWG.Wait()
	// what the kill of replica 2 left: web at 1 replica, replica 2's record
	// of its exit, and its pod not gone yet
	ss, err := cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err)
	ss.Spec.Replicas = ptr(int32(1))
	if ss.Annotations == nil {
		ss.Annotations = map[string]string{}
	}
	ss.Annotations[annotationRecords] = `{"2":{"state":"stopped","exitCode":137,"created":"2026-01-02T03:04:05Z"}}`
	_, err = cs.AppsV1().StatefulSets("shop").Update(ctx, ss, metav1.UpdateOptions{})
	assert.NilError(t, err)
	for n := 1; n <= 2; n++ {
		p := kube.ReplicaPod(ss, n, t0)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: running(t0)}}
		_, err = cs.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		assert.NilError(t, err)
	}

	b2 := syncedBackend(t, cs)
	assert.NilError(t, cs.CoreV1().Pods("shop").Delete(ctx, "web-2", metav1.DeleteOptions{}))
	waitState(t, b2, map[string]container.ContainerState{"/shop-web-1": "running", "/shop-web-2": "exited"})
	r, err := b2.Inspect(ctx, "shop-web-2", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.ExitCode, 137)
}

// The created and stopped plain containers (docker run) outlive a berthd
// restart too: kept in the ConfigMap berth-containers of the default
// namespace, read back with the same ids, names, states and exit codes;
// starting one there applies its Pod, and a removed one's record goes.
func TestPlainRecordsSurviveRestart(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	create := func(name string) string {
		c, err := b.Create(ctx, runtime.CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "1000"}}, HostConfig: &container.HostConfig{}})
		assert.NilError(t, err)
		return c.ID
	}
	ids := map[string]string{"made": create("made"), "halted": create("halted"), "gone": create("gone")}
	assert.NilError(t, b.Start(ctx, "halted"))
	waitFor(t, "halted's pod", func() bool { _, ok := b.inCluster(ids["halted"]); return ok })
	assert.NilError(t, b.Kill(ctx, "halted", "SIGKILL"))
	assert.NilError(t, b.Remove(ctx, "gone", runtime.RemoveOptions{}))
	want := map[string]container.ContainerState{"/made": "created", "/halted": "exited"}
	plain := func(b *Backend) map[string]container.ContainerState {
		out := map[string]container.ContainerState{}
		for n, st := range names(t, b, "") {
			if !strings.HasPrefix(n, "/shop-") {
				out[n] = st
			}
		}
		return out
	}
	assert.DeepEqual(t, plain(b), want)
	b.persistWG.Wait()
	cm, err := cs.CoreV1().ConfigMaps("berth-default").Get(ctx, configMapRecords, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(cm.Data), 2, "records %v", cm.Data)

	// the next berthd over the same cluster
	b2 := syncedBackend(t, cs)
	assert.DeepEqual(t, plain(b2), want)
	for _, n := range []string{"made", "halted"} {
		r, err := b2.Inspect(ctx, n, false)
		assert.NilError(t, err)
		assert.Equal(t, r.ID, ids[n], n)
	}
	r, err := b2.Inspect(ctx, "halted", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.ExitCode, 137)

	assert.NilError(t, b2.Start(ctx, "made"))
	_, err = cs.CoreV1().Pods("berth-default").Get(ctx, "made", metav1.GetOptions{})
	assert.NilError(t, err, "start applied the restored container's pod")
	assert.NilError(t, b2.Remove(ctx, "halted", runtime.RemoveOptions{}))
	b2.persistWG.Wait()
	cm, err = cs.CoreV1().ConfigMaps("berth-default").Get(ctx, configMapRecords, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(cm.Data), 0, "records of a started and a removed container kept: %v", cm.Data)
}
