package backend

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	// the next berthd over the same cluster
	b2, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }})
	assert.NilError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	assert.NilError(t, b2.Sync(sctx))
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
