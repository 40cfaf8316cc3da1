package backend

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/runtime"
)

// stopped, started again, killed, waited for and removed: a plain
// `docker run` Pod.
func TestPlainPodStopStartKillWaitRemove(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	var graces []*int64
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		graces = append(graces, a.(k8stesting.DeleteAction).GetDeleteOptions().GracePeriodSeconds)
		return false, nil, nil
	})
	kubeletRuns := func() {
		t.Helper()
		pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "web1", metav1.GetOptions{})
		assert.NilError(t, err)
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: running(t0)}}
		_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		assert.NilError(t, err)
		waitFor(t, "web1 running", func() bool {
			r, err := b.Inspect(ctx, "web1", false)
			return err == nil && r.State.Running
		})
	}
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "web1", Config: &container.Config{Image: "busybox", Cmd: []string{"top"}}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	// docker run asks for the next exit before it starts
	exit, err := b.Wait(ctx, "web1", container.WaitConditionNextExit)
	assert.NilError(t, err)
	assert.Assert(t, errdefs.IsNotModified(b.Stop(ctx, "web1", "", nil)), "a created container is not running")
	assert.NilError(t, b.Start(ctx, created.ID))
	kubeletRuns()

	timeout := 3
	assert.NilError(t, b.Stop(ctx, "web1", "", &timeout))
	assert.Equal(t, *graces[len(graces)-1], int64(3), "stop -t is the grace period")
	res := <-exit
	assert.NilError(t, res.Err)
	assert.Equal(t, res.ExitCode, 0)
	r, err := b.Inspect(ctx, "web1", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.Status, container.StateExited)
	assert.Equal(t, r.ID, created.ID)
	_, err = cs.CoreV1().Pods("berth-default").Get(ctx, "web1", metav1.GetOptions{})
	assert.Assert(t, err != nil, "the stopped container's pod is gone")

	// started again: the same pod applied once more
	assert.NilError(t, b.Start(ctx, "web1"))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "web1", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, pod.Spec.Containers[0].Args, []string{"top"})
	kubeletRuns()

	err = b.Kill(ctx, "web1", "USR1")
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
	removed, err := b.Wait(ctx, "web1", container.WaitConditionRemoved)
	assert.NilError(t, err)
	assert.NilError(t, b.Kill(ctx, "web1", ""))
	assert.Equal(t, *graces[len(graces)-1], int64(0), "kill is a deletion with no grace")
	r, err = b.Inspect(ctx, "web1", false)
	assert.NilError(t, err)
	assert.Equal(t, r.State.ExitCode, 137)
	select {
	case <-removed:
		t.Fatal("wait removed returned before the remove")
	default:
	}
	assert.NilError(t, b.Remove(ctx, "web1", runtime.RemoveOptions{}))
	assert.Equal(t, (<-removed).ExitCode, 137)
	_, err = b.Inspect(ctx, "web1", false)
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	_, err = b.Wait(ctx, "web1", "")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	_, err = b.Wait(ctx, created.ID, "sometime")
	assert.Assert(t, errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err), "%v", err)
}

// docker start of a plain container whose process ended (restart policy
// no): the pod is replaced by the same spec.
func TestStartExitedPlainPodReplacesIt(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	c, err := b.Create(ctx, runtime.CreateRequest{Name: "job1", Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, c.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "job1", metav1.GetOptions{})
	assert.NilError(t, err)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: exited(1, t0)}}
	pod.Status.Phase = corev1.PodFailed
	_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	assert.NilError(t, err)
	waitFor(t, "job1 exited", func() bool {
		r, err := b.Inspect(ctx, "job1", false)
		return err == nil && r.State.Status == container.StateExited
	})
	assert.NilError(t, b.Start(ctx, "job1"))
	again, err := cs.CoreV1().Pods("berth-default").Get(ctx, "job1", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(again.Status.ContainerStatuses), 0, "a new pod, not the exited one")
	assert.DeepEqual(t, again.Spec.Containers[0].Args, []string{"true"})
	r, err := b.Inspect(ctx, "job1", false)
	assert.NilError(t, err)
	assert.Equal(t, r.ID, c.ID)
}

// docker run of a short command waits (next-exit) before the start; the pod
// may run and end between two looks of the informer: the exit still ends
// the wait, with its code.
func TestWaitNextExitOfAPodNeverSeenRunning(t *testing.T) {
	b, cs := newBackend(t)
	ctx := context.Background()
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "short", Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	ch, err := b.Wait(ctx, created.ID, container.WaitConditionNextExit)
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, created.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "short", metav1.GetOptions{})
	assert.NilError(t, err)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: pod.Spec.Containers[0].Name, State: exited(4, t0)}}
	_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	assert.NilError(t, err)
	select {
	case res := <-ch:
		assert.NilError(t, res.Err)
		assert.Equal(t, res.ExitCode, 4)
	case <-time.After(10 * time.Second):
		t.Fatal("the wait missed an exit it never saw running")
	}
}
