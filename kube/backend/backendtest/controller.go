// Package backendtest has what tests of the Kubernetes backend need and
// client-go's fake clientset lacks: a StatefulSet controller (and kubelet)
// that makes and deletes pods. It is imported by tests only.
package backendtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berthd/berth/kube"
)

// PodIndexLabel is the label a StatefulSet puts on its pods: the ordinal.
const PodIndexLabel = kube.PodIndexLabel

// RunController plays the StatefulSet controller and the kubelet until
// the test ends: for every StatefulSet it makes pods 1..replicas from the
// template, running and ready, started at started, deletes the ones
// above, and replaces the ones it made from another template (a rolling
// update, all at once).
func RunController(t testing.TB, cs *fake.Clientset, started time.Time) {
	t.Helper()
	Run(t, cs, Options{Started: started})
}

// Options are the fake controller's.
type Options struct {
	// Started is the start time of every container.
	Started time.Time
	// NotReady are services whose new pods run but are not ready (their
	// readiness probe has not passed yet) until SetReady says they are.
	NotReady map[string]bool
}

// Run is RunController with options.
func Run(t testing.TB, cs *fake.Clientset, o Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := cs.AppsV1().StatefulSets(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := cs.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		defer pw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				// the set as it is now, not as the event saw it: an event
				// still queued from before a scale-down would make the pods
				// the scale removed again
				if ss, isSet := ev.Object.(*appsv1.StatefulSet); isSet && ev.Type != watch.Deleted {
					if cur, err := cs.AppsV1().StatefulSets(ss.Namespace).Get(ctx, ss.Name, metav1.GetOptions{}); err == nil {
						reconcile(ctx, cs, cur, o)
					}
				}
			case ev, ok := <-pw.ResultChan():
				if !ok {
					return
				}
				// a pod it made that is deleted is made again, if its
				// StatefulSet still wants it
				if p, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type == watch.Deleted && p.Annotations[AnnotationRevision] != "" {
					set := strings.TrimSuffix(p.Name, "-"+p.Labels[PodIndexLabel])
					if ss, err := cs.AppsV1().StatefulSets(p.Namespace).Get(ctx, set, metav1.GetOptions{}); err == nil {
						reconcile(ctx, cs, ss, o)
					}
				}
			}
		}
	}()
}

func reconcile(ctx context.Context, cs *fake.Clientset, ss *appsv1.StatefulSet, o Options) {
	want := 1
	if ss.Spec.Replicas != nil {
		want = int(*ss.Spec.Replicas)
	}
	pods, err := cs.CoreV1().Pods(ss.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ss.Spec.Selector.MatchLabels).String()})
	if err != nil {
		return
	}
	revision := Revision(ss)
	have := map[int]bool{}
	for _, p := range pods.Items {
		n, _ := strconv.Atoi(p.Labels[PodIndexLabel])
		if p.Name != ss.Name+"-"+strconv.Itoa(n) {
			continue // not one of its ordinals' (a one-shot replica's pod): not its to adopt
		}
		old := p.Annotations[AnnotationRevision] != "" && p.Annotations[AnnotationRevision] != revision
		if n > want || old {
			_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
		have[n] = !old
	}
	for n := 1; n <= want; n++ {
		if have[n] {
			continue
		}
		p := kube.ReplicaPod(ss, n, o.Started)
		p.Annotations = maps.Clone(p.Annotations)
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[AnnotationRevision] = revision
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(o.Started)}}, Ready: !o.NotReady[ss.Name], Started: ptr(true)}}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			panic(err)
		}
	}
}

// AnnotationRevision is the template a pod of the fake controller was
// made from (Revision).
const AnnotationRevision = "backendtest/revision"

// Revision is a digest of a StatefulSet's pod template, as the
// controller's revisions are.
func Revision(ss *appsv1.StatefulSet) string {
	data, _ := json.Marshal(ss.Spec.Template)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// SetReady sets the readiness of a pod's containers, as the kubelet does
// when its readiness probe passes (or fails).
func SetReady(ctx context.Context, cs *fake.Clientset, ns, pod string, ready bool) error {
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = ready
	}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// EarlyScaleUps records the writes to a service's StatefulSet (applies and
// scale patches) that run pods, made before ready held: depends_on broken.
// A create's apply at 0 replicas runs none.
func EarlyScaleUps(cs *fake.Clientset, ns, service string, ready *atomic.Bool) func() []string {
	var mu sync.Mutex
	var early []string
	cs.PrependReactor("patch", "statefulsets", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		var body struct{ Spec struct{ Replicas *int } }
		_ = json.Unmarshal(pa.GetPatch(), &body)
		// an apply without replicas runs one; a merge patch without them
		// (an annotation) changes none
		runs := body.Spec.Replicas != nil && *body.Spec.Replicas > 0 || body.Spec.Replicas == nil && pa.GetPatchType() == types.ApplyPatchType
		if pa.GetNamespace() == ns && pa.GetName() == service && runs && !ready.Load() {
			mu.Lock()
			early = append(early, string(pa.GetPatchType())+" "+string(pa.GetPatch()))
			mu.Unlock()
		}
		return false, nil, nil
	})
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), early...) }
}

func ptr[T any](v T) *T { return &v }
