package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/runtime"
)

// runController plays the StatefulSet controller and the kubelet, which
// the fake clientset does not have: for every StatefulSet it makes running
// pods 1..replicas from the template and deletes the ones above.
func runController(t *testing.T, cs *fake.Clientset) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := cs.AppsV1().StatefulSets(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
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
					reconcile(ctx, cs, ss)
				}
			}
		}
	}()
}

func reconcile(ctx context.Context, cs *fake.Clientset, ss *appsv1.StatefulSet) {
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
		n, _ := strconv.Atoi(p.Labels[podIndexLabel])
		if n > want {
			_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
		have[n] = true
	}
	for n := 1; n <= want; n++ {
		if have[n] {
			continue
		}
		p := replicaPod(ss, n, t0)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: running(t0), Ready: true}}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			panic(err)
		}
	}
}

// composeCreate is a create compose v2 sends (testdata/create/<file>),
// renumbered as replica n.
func composeCreate(t *testing.T, file string, n int) runtime.CreateRequest {
	t.Helper()
	data, err := os.ReadFile("../testdata/create/" + file)
	assert.NilError(t, err)
	var body struct {
		Name string
		container.Config
		HostConfig       *container.HostConfig
		NetworkingConfig *network.NetworkingConfig
	}
	assert.NilError(t, json.Unmarshal(data, &body))
	svc := body.Labels["com.docker.compose.service"]
	body.Labels["com.docker.compose.container-number"] = strconv.Itoa(n)
	name := fmt.Sprintf("shop-%s-%d", svc, n)
	for _, ep := range body.NetworkingConfig.EndpointsConfig {
		ep.Aliases[0] = name
	}
	return runtime.CreateRequest{Name: name, Config: &body.Config, HostConfig: body.HostConfig, NetworkingConfig: body.NetworkingConfig}
}

func replicasOf(t *testing.T, cs *fake.Clientset, ns, name string) int {
	t.Helper()
	ss, err := cs.AppsV1().StatefulSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	assert.NilError(t, err)
	return int(*ss.Spec.Replicas)
}
