package backend

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
)

var t0 = time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)

// newBackend is a synced backend over a fake clientset holding objs.
func newBackend(t *testing.T, objs ...corev1.Pod) (*Backend, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	for i := range objs {
		_, err := cs.CoreV1().Pods(objs[i].Namespace).Create(context.Background(), &objs[i], metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, b.Sync(ctx))
	return b, cs
}

// syncedBackend is the next berthd's backend over the cluster cs: synced,
// and its pod informer watching. The fake's watch delivers what was added
// or changed between the informer's list and its watch, but not what was
// deleted in between (the API server's watch does): a test that deletes a
// pod right after Sync waits for the watch first.
func syncedBackend(t *testing.T, cs *fake.Clientset) *Backend {
	t.Helper()
	var watches atomic.Int32
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if w, ok := a.(k8stesting.WatchActionImpl); ok {
			opts = w.ListOptions
		}
		w, err := cs.Tracker().Watch(a.GetResource(), a.GetNamespace(), opts)
		if err == nil {
			watches.Add(1)
		}
		return true, w, err
	})
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, b.Sync(ctx))
	waitFor(t, "the pod informer's watch", func() bool { return watches.Load() > 0 })
	return b
}

// waitFor waits until cond holds: the informer sees the fake's writes
// through a watch, not at once.
// waitFor polls cond for 10 s; seen, when given, says what the last poll
// found for the failure message.
func waitFor(t *testing.T, what string, cond func() bool, seen ...func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, s := range seen {
				what += "; " + s()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func upShop(t *testing.T, b *Backend) *compose.UpResult {
	t.Helper()
	dir, err := filepath.Abs("../testdata/shop")
	assert.NilError(t, err)
	res, err := b.Up(context.Background(), compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "shop", ConfigFiles: []string{"compose.yaml"}}})
	assert.NilError(t, err)
	return res
}

func TestUpAppliesOwnedObjectsServerSide(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs) // web waits for db's ready pod
	res := upShop(t, b)
	assert.Equal(t, res.Project, "shop")
	ctx := context.Background()

	ns, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ns.Labels[kube.LabelManagedBy], kube.ManagedBy)
	sets, err := cs.AppsV1().StatefulSets("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	var names []string
	for _, s := range sets.Items {
		names = append(names, s.Name)
		assert.Equal(t, s.Labels[kube.LabelManagedBy], kube.ManagedBy, s.Name)
		// written by server-side apply, owned by the field manager berth
		assert.Assert(t, len(s.ManagedFields) > 0, s.Name)
		assert.Equal(t, s.ManagedFields[0].Manager, FieldManager)
		assert.Equal(t, s.ManagedFields[0].Operation, metav1.ManagedFieldsOperationApply)
	}
	assert.DeepEqual(t, names, []string{"db", "web", "worker"})
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err)
	_, err = cs.CoreV1().Services("shop").Get(ctx, "web-published", metav1.GetOptions{})
	assert.NilError(t, err)
	// the order of the actions is Objects()'s: the namespace first, the
	// StatefulSets last in dependency order
	assert.Equal(t, res.Actions[0].Kind, "Namespace")
	assert.Equal(t, res.Actions[len(res.Actions)-1].Name, "worker")

	// a second up is idempotent (apply again, no conflict)
	upShop(t, b)
}

func TestScaleAndDown(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	upShop(t, b)
	ctx := context.Background()

	_, err := b.Scale(ctx, "shop", compose.ScaleRequest{Services: map[string]int{"worker": 3}})
	assert.NilError(t, err)
	ss, err := cs.AppsV1().StatefulSets("shop").Get(ctx, "worker", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, *ss.Spec.Replicas, int32(3))
	assert.Equal(t, ss.Spec.Template.Spec.Containers[0].Image, "busybox:1.36", "scale kept the rest of the spec")

	_, err = b.Scale(ctx, "shop", compose.ScaleRequest{Services: map[string]int{"nope": 1}})
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	_, err = b.Scale(ctx, "shop", compose.ScaleRequest{Services: map[string]int{"worker": -1}})
	assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)

	// down keeps the volumes and so the namespace holding them
	_, err = b.Down(ctx, compose.DownRequest{Project: "shop"})
	assert.NilError(t, err)
	sets, err := cs.AppsV1().StatefulSets("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(sets.Items, 0))
	svcs, err := cs.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(svcs.Items, 0))
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err)

	// down -v removes claims and the namespace
	res, err := b.Down(ctx, compose.DownRequest{Project: "shop", Volumes: true})
	assert.NilError(t, err)
	assert.Equal(t, res.Actions[len(res.Actions)-1].Kind, "Namespace")
	_, err = cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.Assert(t, err != nil, "namespace still there")
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.Assert(t, err != nil, "claim still there")

	// a project with nothing is not an error
	_, err = b.Down(ctx, compose.DownRequest{Project: "shop", Volumes: true})
	assert.NilError(t, err)
}

func TestUpRefusesBeforeApplyingAnything(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), "services:\n  db:\n    image: postgres\n  web:\n    image: nginx\n    volumes: [\"./html:/usr/share/nginx/html\"]\n")
	b, cs := newBackend(t)
	before := len(cs.Actions())
	_, err := b.Up(context.Background(), compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "p", ConfigFiles: []string{"compose.yaml"}}})
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
	assert.Equal(t, len(cs.Actions()), before, "nothing sent to the cluster")

	for _, req := range []compose.UpRequest{{FromRecord: true}, {RemoveOrphans: true}} {
		_, err := b.Up(context.Background(), req)
		assert.Assert(t, errdefs.IsNotImplemented(err), "%+v: %v", req, err)
	}
}
