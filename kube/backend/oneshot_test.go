package backend

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/runtime"
)

// exitPod is the kubelet reporting that a pod's container exited.
func exitPod(t *testing.T, cs *fake.Clientset, ns, pod string, code int32) {
	t.Helper()
	ctx := context.Background()
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	assert.NilError(t, err)
	p.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		p.Status.Phase = corev1.PodFailed
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: metav1.NewTime(t0), FinishedAt: metav1.NewTime(t0.Add(time.Second))}}}}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	assert.NilError(t, err)
}

func podExists(cs *fake.Clientset, ns, name string) bool {
	_, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}

// berth compose up of kube/testdata/oneshot: migrate (depended on with
// service_completed_successfully) runs as a Pod the kubelet does not
// restart, its StatefulSet at 0 replicas, once db is healthy; web is
// applied only after migrate's pod exited 0. An exit 1 fails the up in
// compose's words, and web is not applied.
func TestUpOneShot(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int32
		want string
	}{
		{"completed", 0, ""},
		{"failed", 1, `service "migrate" didn't complete successfully: exit 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, cs := newBackend(t)
			runController(t, cs)
			dir, err := filepath.Abs("../testdata/oneshot")
			assert.NilError(t, err)
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := b.Up(ctx, compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "shop", ConfigFiles: []string{"compose.yaml"}}})
				done <- err
			}()
			waitFor(t, "migrate's one-shot pod", func() bool { return podExists(cs, "shop", "migrate-once-1") })
			p, err := cs.CoreV1().Pods("shop").Get(context.Background(), "migrate-once-1", metav1.GetOptions{})
			assert.NilError(t, err)
			assert.Equal(t, p.Spec.RestartPolicy, corev1.RestartPolicyNever)
			assert.Equal(t, replicasOf(t, cs, "shop", "migrate"), 0)
			waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-migrate-1": "created"})
			assert.Assert(t, !setExists(cs, "shop", "web"), "web applied before migrate completed")

			exitPod(t, cs, "shop", "migrate-once-1", tc.code)
			var upErr error
			select {
			case upErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("up did not return after migrate's exit")
			}
			if tc.want != "" {
				assert.ErrorContains(t, upErr, tc.want)
				assert.Assert(t, errdefs.IsFailedPrecondition(upErr), "%v", upErr)
				assert.Assert(t, !setExists(cs, "shop", "web"))
				return
			}
			assert.NilError(t, upErr)
			waitState(t, b, map[string]container.ContainerState{"/shop-db-1": "running", "/shop-migrate-1": "exited", "/shop-web-1": "running"})
			assert.Assert(t, podExists(cs, "shop", "migrate-once-1"), "the fake controller deleted the one-shot pod")
		})
	}
}

// compose v2's path: migrate's create is a replica like any; its start,
// once a service depends on it by completion, applies its one-shot pod
// (the StatefulSet stays at 0) with the replica's id; web's start waits
// for its exit 0, or fails in compose's words; a start of the exited
// migrate runs it again; rm of the exited one removes its pod.
func TestStartOneShotReplica(t *testing.T) {
	b, cs := newBackend(t)
	runController(t, cs)
	ctx := context.Background()
	mreq := composeCreate(t, "web-2.json", 1)
	mreq.Name = "/shop-migrate-1"
	mreq.Config.Labels[compose.LabelService] = "migrate"
	delete(mreq.Config.Labels, compose.LabelDependsOn)
	mreq.HostConfig.PortBindings = nil
	mreq.Config.ExposedPorts = nil
	for _, ep := range mreq.NetworkingConfig.EndpointsConfig {
		ep.Aliases = []string{"shop-migrate-1", "migrate"}
	}
	migrate, err := b.Create(ctx, mreq)
	assert.NilError(t, err)
	wreq := composeCreate(t, "web-2.json", 1)
	wreq.Config.Labels[compose.LabelDependsOn] = "migrate:service_completed_successfully:false"
	web, err := b.Create(ctx, wreq)
	assert.NilError(t, err)

	assert.NilError(t, b.Start(ctx, migrate.ID))
	assert.Assert(t, podExists(cs, "shop", "migrate-once-1"))
	assert.Equal(t, replicasOf(t, cs, "shop", "migrate"), 0)
	insp, err := b.Inspect(ctx, "shop-migrate-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.ID, migrate.ID)

	started := make(chan error, 1)
	go func() { started <- b.Start(ctx, web.ID) }()
	// (a start that did not wait would have scaled web up, without error)
	exitPod(t, cs, "shop", "migrate-once-1", 3)
	err = <-started
	assert.ErrorContains(t, err, `service "migrate" didn't complete successfully: exit 3`)
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 0)

	// run again: the exited pod is replaced by a new run
	assert.NilError(t, b.Start(ctx, "shop-migrate-1"))
	waitState(t, b, map[string]container.ContainerState{"/shop-migrate-1": "created", "/shop-web-1": "created"})
	go func() { started <- b.Start(ctx, web.ID) }()
	exitPod(t, cs, "shop", "migrate-once-1", 0)
	assert.NilError(t, <-started)
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 1)

	assert.NilError(t, b.Remove(ctx, "shop-migrate-1", runtime.RemoveOptions{}))
	assert.Assert(t, !podExists(cs, "shop", "migrate-once-1"))
	assert.Assert(t, setExists(cs, "shop", "migrate") == false, "migrate's StatefulSet goes with its last container")
}
