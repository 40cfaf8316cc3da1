// Package backendtest has what tests of the Kubernetes backend need and
// client-go's fake clientset lacks: a StatefulSet controller (and kubelet)
// that makes and deletes pods. It is imported by tests only.
package backendtest

import (
	"context"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/kube"
)

// PodIndexLabel is the label a StatefulSet puts on its pods: the ordinal.
const PodIndexLabel = kube.PodIndexLabel

// RunController plays the StatefulSet controller and the kubelet until
// the test ends: for every StatefulSet it makes pods 1..replicas from the
// template, running and ready, started at started, and deletes the ones
// above.
func RunController(t testing.TB, cs *fake.Clientset, started time.Time) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := cs.AppsV1().StatefulSets(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if ss, isSet := ev.Object.(*appsv1.StatefulSet); isSet && ev.Type != watch.Deleted {
					reconcile(ctx, cs, ss, started)
				}
			}
		}
	}()
}

func reconcile(ctx context.Context, cs *fake.Clientset, ss *appsv1.StatefulSet, started time.Time) {
	want := 1
	if ss.Spec.Replicas != nil {
		want = int(*ss.Spec.Replicas)
	}
	pods, err := cs.CoreV1().Pods(ss.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ss.Spec.Selector.MatchLabels).String()})
	if err != nil {
		return
	}
	have := map[int]bool{}
	for _, p := range pods.Items {
		n, _ := strconv.Atoi(p.Labels[PodIndexLabel])
		if n > want {
			_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
		have[n] = true
	}
	for n := 1; n <= want; n++ {
		if have[n] {
			continue
		}
		p := kube.ReplicaPod(ss, n, started)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}, Ready: true}}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			panic(err)
		}
	}
}
