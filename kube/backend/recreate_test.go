package backend

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube/backend/backendtest"
	"github.com/berthd/berth/runtime"
)

// recreate is compose v2's recreateContainer of the container oldID
// (from its list before it converges: a pod the controller is rolling may
// be gone for a moment): a create under a temporary name with
// com.docker.compose.replace, inspect of it, stop and rm of the old
// container, rename of the new one.
func recreate(t *testing.T, b *Backend, oldID string, req runtime.CreateRequest, service string, n int) {
	t.Helper()
	ctx := context.Background()
	name := strings.TrimPrefix(req.Name, "/")
	tmp := oldID[:12] + "_" + name
	req.Name = "/" + tmp
	req.Config.Labels[compose.LabelReplace] = service + "-" + string(rune('0'+n))
	created, err := b.Create(ctx, req)
	assert.NilError(t, err)
	assert.Assert(t, created.ID != oldID)
	insp, err := b.Inspect(ctx, created.ID, false)
	assert.NilError(t, err)
	assert.Equal(t, insp.Name, "/"+tmp)
	assert.Equal(t, insp.State.Status, container.StateCreated)
	if err := b.Stop(ctx, oldID, "", nil); !errdefs.IsNotModified(err) { // a stopped one: 304, which the client takes
		assert.NilError(t, err)
	}
	assert.NilError(t, b.Remove(ctx, oldID, runtime.RemoveOptions{}))
	assert.NilError(t, b.Rename(ctx, tmp, name))
	_, err = b.Inspect(ctx, tmp, false)
	assert.Assert(t, errdefs.IsNotFound(err), "the temporary name is gone: %v", err)
}

// startAll is compose's start after its creates: every container of the
// project that does not run is started.
func startAll(t *testing.T, b *Backend) {
	t.Helper()
	list, err := b.List(context.Background(), runtime.ListOptions{All: true, Filters: mustFilters(t, shopFilter)})
	assert.NilError(t, err)
	for _, c := range list {
		if c.State != container.StateRunning {
			if err := b.Start(context.Background(), c.ID); err != nil && !errdefs.IsNotModified(err) {
				t.Fatalf("start %s: %v", c.Names[0], err)
			}
		}
	}
}

// setDeletes are the deletes of StatefulSets the clientset saw, with
// their propagation policy.
func setDeletes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "statefulsets" {
			p := "default"
			if o := d.GetDeleteOptions().PropagationPolicy; o != nil {
				p = string(*o)
			}
			out = append(out, d.GetName()+":"+p)
		}
	}
	return out
}

func podDeletes(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

// docker compose up of a changed web: compose recreates each replica
// through creates; the replicas come up with the new configuration, keep
// their names and ids, and nothing else is left. A change of the pod
// template is an apply (the controller rolls); a new anonymous volume
// changes the claim templates, which a StatefulSet cannot: it is deleted
// with orphan semantics and applied again.
func TestComposeRecreateByCreates(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()
	db, err := b.Create(ctx, composeCreate(t, "db.json", 1))
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, db.ID))
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running"})
	ids := map[int]string{}
	for n := 1; n <= 2; n++ {
		c, err := b.Create(ctx, composeCreate(t, "web-2.json", n))
		assert.NilError(t, err)
		assert.NilError(t, b.Start(ctx, c.ID))
		ids[n] = c.ID
	}
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running"})
	dbRevision := podRevision(t, cs, "db-1")

	changed := func(n int, env string, anon bool) runtime.CreateRequest {
		req := composeCreate(t, "web-2.json", n)
		req.Config.Env = append(req.Config.Env, env)
		req.Config.Labels[compose.LabelConfigHash] = strings.Repeat(env[len(env)-1:], 64)
		if anon {
			req.HostConfig.Mounts = append(req.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Target: "/cache"})
		}
		return req
	}
	for _, step := range []struct {
		name, env string
		anon      bool
		deletes   []string
	}{
		{"env: an apply rolls the pods", "CHANGED=1", false, nil},
		{"anonymous volume: orphaned and applied again", "CHANGED=2", true, []string{"web:Orphan"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			cs.ClearActions()
			for n := 1; n <= 2; n++ {
				recreate(t, b, ids[n], changed(n, step.env, step.anon), "web", n)
			}
			startAll(t, b)
			assert.DeepEqual(t, setDeletes(cs), step.deletes)
			ss, err := cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
			assert.NilError(t, err)
			assert.Equal(t, *ss.Spec.Replicas, int32(2))
			assert.Equal(t, len(ss.Spec.VolumeClaimTemplates) == 1, step.anon)
			_, replaced := ss.Spec.Template.Labels[compose.LabelReplace]
			assert.Assert(t, !replaced, "the replace label is the create's, not the template's")
			waitFor(t, "web's pods rolled", func() bool {
				return podRevision(t, cs, "web-1") == backendtest.Revision(ss) && podRevision(t, cs, "web-2") == backendtest.Revision(ss)
			})
			waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running"})
			for n := 1; n <= 2; n++ {
				insp, err := b.Inspect(ctx, "shop-web-"+string(rune('0'+n)), false)
				assert.NilError(t, err)
				assert.Equal(t, insp.ID, ids[n], "a replica keeps its id")
				assert.Check(t, is.Contains(insp.Config.Env, step.env))
				assert.Equal(t, insp.Config.Labels[compose.LabelConfigHash], strings.Repeat(step.env[len(step.env)-1:], 64))
			}
			assert.Equal(t, podRevision(t, cs, "db-1"), dbRevision, "db is not restarted")
		})
	}
	assert.Equal(t, replicasOf(t, cs, "shop", "db"), 1)
}

// A recreated replica that was stopped (no pod) is a created container
// after the rename, with the new configuration, and compose's start runs
// it.
func TestComposeRecreateStoppedReplica(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()
	c, err := b.Create(ctx, composeCreate(t, "web-2.json", 1))
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, c.ID))
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "running"})
	assert.NilError(t, b.Stop(ctx, "shop-web-1", "", nil))
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "exited"})

	req := composeCreate(t, "web-2.json", 1)
	req.Config.Env = append(req.Config.Env, "CHANGED=1")
	req.Config.Labels[compose.LabelConfigHash] = strings.Repeat("1", 64)
	recreate(t, b, c.ID, req, "web", 1)
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "created"})
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 0)
	startAll(t, b)
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 1)
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "running"})
	insp, err := b.Inspect(ctx, "shop-web-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.ID, c.ID)
	assert.Check(t, is.Contains(insp.Config.Env, "CHANGED=1"))
}

// berth compose up of a changed file: a second and a third up of the same
// file change no pod; a changed command is an apply that rolls the
// service's pods; a new anonymous volume deletes the StatefulSet with
// orphan semantics (pods and claims kept) and applies it again.
func TestUpRecreatesChangedService(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	up := func(yaml string) {
		t.Helper()
		writeFile(t, file, yaml)
		_, err := b.Up(context.Background(), compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "shop", ConfigFiles: []string{"compose.yaml"}}})
		assert.NilError(t, err)
	}
	const base = "services:\n  db:\n    image: postgres:16\n  web:\n    image: nginx:1\n    command: [nginx]\n    deploy: {replicas: 2}\n"
	up(base)
	waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running"})
	cs.ClearActions()
	up(base)
	up(base)
	assert.Equal(t, podDeletes(cs), 0, "an unchanged up restarts nothing")
	assert.Check(t, is.Len(setDeletes(cs), 0))

	for _, step := range []struct {
		name, yaml string
		deletes    []string
		check      func(t *testing.T, insp *container.InspectResponse)
	}{
		{"command", strings.Replace(base, "[nginx]", "[nginx, -g, daemon off;]", 1), nil, func(t *testing.T, insp *container.InspectResponse) {
			assert.DeepEqual(t, []string(insp.Config.Cmd), []string{"nginx", "-g", "daemon off;"})
		}},
		{"image and ports", strings.Replace(base, "image: nginx:1\n", "image: nginx:2\n    ports: [\"8080:80\"]\n", 1), nil, func(t *testing.T, insp *container.InspectResponse) {
			assert.Equal(t, insp.Config.Image, "nginx:2")
		}},
		{"anonymous volume", strings.Replace(base, "image: nginx:1\n", "image: nginx:1\n    volumes: [/cache]\n", 1), []string{"web:Orphan"}, func(t *testing.T, insp *container.InspectResponse) {
			assert.Equal(t, insp.Config.Image, "nginx:1")
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			dbRevision := podRevision(t, cs, "db-1")
			cs.ClearActions()
			up(step.yaml)
			assert.DeepEqual(t, setDeletes(cs), step.deletes)
			ss, err := cs.AppsV1().StatefulSets("shop").Get(context.Background(), "web", metav1.GetOptions{})
			assert.NilError(t, err)
			waitFor(t, "web's pods rolled", func() bool {
				return podRevision(t, cs, "web-1") == backendtest.Revision(ss) && podRevision(t, cs, "web-2") == backendtest.Revision(ss)
			})
			waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-web-1": "running", "/shop-web-2": "running"})
			insp, err := b.Inspect(context.Background(), "shop-web-2", false)
			assert.NilError(t, err)
			step.check(t, insp)
			assert.Equal(t, podRevision(t, cs, "db-1"), dbRevision, "db is not restarted")
		})
	}
}

func podRevision(t *testing.T, cs *fake.Clientset, pod string) string {
	t.Helper()
	p, err := cs.CoreV1().Pods("shop").Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return p.Annotations[backendtest.AnnotationRevision]
}

// rm -v of a replica deletes the claims of its anonymous volumes (its
// StatefulSet's claim templates, <template>-<pod>); rm without -v keeps
// them, as Docker keeps a container's anonymous volumes.
func TestRemoveVolumesDeletesReplicaClaims(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()
	for n := 1; n <= 2; n++ {
		req := composeCreate(t, "web-2.json", n)
		req.HostConfig.Mounts = append(req.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Target: "/cache"})
		c, err := b.Create(ctx, req)
		assert.NilError(t, err)
		assert.NilError(t, b.Start(ctx, c.ID))
	}
	waitState(t, b, map[string]container.ContainerState{"/shop-web-1": "running", "/shop-web-2": "running"})
	ss, err := cs.AppsV1().StatefulSets("shop").Get(ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(ss.Spec.VolumeClaimTemplates), 1)
	claim := func(pod string) string { return ss.Spec.VolumeClaimTemplates[0].Name + "-" + pod }
	for _, pod := range []string{"web-1", "web-2"} {
		// the controller makes them; the fake one does not
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claim(pod), Namespace: "shop", Labels: ss.Spec.VolumeClaimTemplates[0].Labels}}
		_, err := cs.CoreV1().PersistentVolumeClaims("shop").Create(ctx, pvc, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	assert.NilError(t, b.Stop(ctx, "shop-web-2", "", nil))
	assert.NilError(t, b.Remove(ctx, "shop-web-2", runtime.RemoveOptions{RemoveVolumes: true}))
	assert.NilError(t, b.Remove(ctx, "shop-web-1", runtime.RemoveOptions{Force: true}))
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, claim("web-2"), metav1.GetOptions{})
	assert.Assert(t, apierrors.IsNotFound(err), "rm -v left the claim of web-2's anonymous volume: %v", err)
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, claim("web-1"), metav1.GetOptions{})
	assert.NilError(t, err, "rm without -v keeps the anonymous volume")
}
