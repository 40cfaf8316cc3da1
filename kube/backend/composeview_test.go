package backend

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/compose"
)

// berth compose ps and logs on this backend: the single-host backend's
// deployment view of the pods, and their pods/log merged by time.
func TestBerthComposePsAndLogs(t *testing.T) {
	b, cs := newBackend(t, shopPods()...)
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &k8sruntime.Unknown{Raw: []byte("2026-12-06T04:59:01Z world\n2026-12-06T04:59:00.5Z hello\n")}, nil
	})
	d := b.Deployments()
	ctx := context.Background()

	deps, err := d.Ps(ctx, "shop")
	assert.NilError(t, err)
	assert.Equal(t, len(deps), 1)
	got := map[string][]string{}
	for _, s := range deps[0].Services {
		for _, r := range s.Replicas {
			got[s.Name] = append(got[s.Name], r.Name+" "+string(r.State))
		}
	}
	assert.DeepEqual(t, got, map[string][]string{"db": {"shop-db-1 running"}, "worker": {"shop-worker-1 running", "shop-worker-2 exited"}})
	all, err := d.Ps(ctx, "")
	assert.NilError(t, err)
	assert.Equal(t, len(all), 2, "shop and blog")

	// the status berth compose ps and logs read: desired replicas from the
	// StatefulSets (db has none here)
	_, err = cs.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "worker"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr(int32(2))}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	st, err := d.Deployment(ctx, "shop")
	assert.NilError(t, err)
	assert.Equal(t, st.Status, "exited(1), running(2)")
	var svcs []string
	for _, s := range st.Services {
		svcs = append(svcs, fmt.Sprintf("%s %d/%d", s.Name, s.Running, s.Desired))
	}
	assert.DeepEqual(t, svcs, []string{"db 1/0", "worker 1/2"})
	_, err = d.Deployment(ctx, "nope")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	list, err := d.Deployments(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(list), 2)

	ch, err := d.Logs(ctx, "shop", compose.LogsRequest{Services: []string{"worker"}, Tail: -1})
	assert.NilError(t, err)
	var lines []string
	var entries []compose.LogEntry
	for e := range ch {
		entries = append(entries, e)
		lines = append(lines, e.Prefix()+" "+e.Line)
	}
	assert.Assert(t, slices.IsSortedFunc(entries, func(a, b compose.LogEntry) int { return a.Time.Compare(b.Time) }), "%v", lines)
	slices.Sort(lines)
	assert.DeepEqual(t, lines, []string{"worker-1 hello", "worker-1 world", "worker-2 hello", "worker-2 world"})

	_, err = d.Logs(ctx, "shop", compose.LogsRequest{Services: []string{"nope"}})
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	_, err = d.Logs(ctx, "nope", compose.LogsRequest{})
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "No such deployment: nope")
}
