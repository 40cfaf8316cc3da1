package integration

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/remotecommand"

	kubebackend "github.com/berthd/berth/kube/backend"
)

// kubeletAttach plays pods/attach and the kubelet for plain pods: the
// attached process reads its stdin, answers on stdout and exits with code.
type kubeletAttach struct {
	cs   *fake.Clientset
	code atomic.Int32
	reqs chan kubebackend.ExecRequest
}

func (k *kubeletAttach) Exec(ctx context.Context, req kubebackend.ExecRequest, so remotecommand.StreamOptions) error {
	k.reqs <- req
	if !req.Attach {
		return io.ErrUnexpectedEOF
	}
	in := []byte("(no stdin)")
	if so.Stdin != nil {
		in, _ = io.ReadAll(so.Stdin)
	}
	_, _ = io.WriteString(so.Stdout, "got "+string(in)+"\n")
	// the process ends: the kubelet reports it
	p, err := k.cs.CoreV1().Pods(req.Namespace).Get(ctx, req.Pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: k.code.Load(), FinishedAt: metav1.Now()}}}}
	p.Status.Phase = corev1.PodFailed
	_, err = k.cs.CoreV1().Pods(req.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// runPlainPods plays the kubelet starting every new pod.
func runPlainPods(t *testing.T, cs *fake.Clientset) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := cs.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added || len(p.Status.ContainerStatuses) > 0 {
				continue
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
			p.Status.Phase = corev1.PodRunning
			_, _ = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	}()
}

// The real docker CLI's `docker run -i` (attach before the start, then
// wait) and `docker start -ai` on the Kubernetes backend: the attach waits
// for the pod to run, streams through pods/attach, and the run exits with
// the container's exit code.
func TestKubeBackendDockerRunAttach(t *testing.T) {
	cs := fake.NewClientset()
	runPlainPods(t, cs)
	k := &kubeletAttach{cs: cs, reqs: make(chan kubebackend.ExecRequest, 10)}
	k.code.Store(3)
	sock := kubeEngineWith(t, cs, kubeEngineOptions{exec: k})
	dir := t.TempDir()
	docker := func(stdin string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+dir, "DOCKER_CONTEXT=")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		assert.NilError(t, err, string(out))
		return string(out), 0
	}
	out, code := docker("hello", "run", "-i", "--name", "catty", "busybox", "cat")
	assert.Equal(t, out, "got hello\n")
	assert.Equal(t, code, 3, "docker run exits with the container's code")
	req := <-k.reqs
	assert.DeepEqual(t, req, kubebackend.ExecRequest{Namespace: "berth-default", Pod: "catty", Container: req.Container, Stdin: true, Stdout: true, Stderr: true, Attach: true})

	// docker run without -i of a short command: its output from the pod's
	// log (pods/attach could come too late), here a log whose end is the
	// process's (the fake kubelet ends the pod when the log is read)
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		go func() {
			ctx := context.Background()
			p, err := cs.CoreV1().Pods("berth-default").Get(ctx, "quick", metav1.GetOptions{})
			if err != nil {
				return
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 5, FinishedAt: metav1.Now()}}}}
			_, _ = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}()
		return true, &k8sruntime.Unknown{Raw: []byte(time.Now().UTC().Format(time.RFC3339Nano) + " hi\n")}, nil
	})
	out, code = docker("", "run", "--name", "quick", "busybox", "echo", "hi")
	assert.Equal(t, out, "hi\n")
	assert.Equal(t, code, 5)

	// start -ai of the exited container: its pod replaced, attached again
	k.code.Store(0)
	out, code = docker("again", "start", "-ai", "catty")
	assert.Equal(t, out, "got again\n")
	assert.Equal(t, code, 0)
	assert.Equal(t, (<-k.reqs).Pod, "catty")
}
