package backend

import (
	"context"
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
	"github.com/berthd/berth/runtime"
)

// svcKey is a compose service in the cluster: its namespace and
// StatefulSet.
type svcKey struct{ ns, service string }

func isReplica(p *corev1.Pod) bool { return p.Labels[compose.LabelProject] != "" }

func keyOf(p *corev1.Pod) svcKey { return svcKey{p.Namespace, p.Labels[compose.LabelService]} }

func ordinal(p *corev1.Pod) int {
	n, _ := strconv.Atoi(p.Labels[podIndexLabel])
	return n
}

// createReplica is compose v2's create of one replica (docker compose up):
// the first create of a service applies its namespace, claims, Services
// and StatefulSet at 0 replicas; every create records the replica as
// created, and start scales the StatefulSet to include it. A create of
// another configuration applies the service's new StatefulSet, which rolls
// its running pods; compose sends it as the first step of recreating a
// replica (com.docker.compose.replace: recreate.go), or for a replica it
// adds to a service it recreates.
func (b *Backend) createReplica(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error) {
	r, err := kube.TranslateCreate(kube.CreateRequest{Name: req.Name, Config: req.Config, HostConfig: req.HostConfig, Networking: req.NetworkingConfig}, b.o)
	if err != nil {
		return container.CreateResponse{}, err
	}
	ss := r.Manifests.StatefulSets[0]
	recordDockerNames(ss, req)
	cur, err := b.c.AppsV1().StatefulSets(ss.Namespace).Get(ctx, ss.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return container.CreateResponse{}, fromAPI(err)
	case cur.Labels[kube.LabelManagedBy] != kube.ManagedBy:
		return container.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("StatefulSet %s/%s exists and is not berth's", ss.Namespace, ss.Name))
	case r.Replaces != "":
		return b.createReplacement(ctx, r, cur, req.Name)
	default:
		ss.Spec.Replicas = cur.Spec.Replicas // a create changes no running replica
	}
	pod := kube.ReplicaPod(ss, r.Number, b.now())
	id := containerID(pod)
	if _, ok := b.inCluster(id); ok {
		return container.CreateResponse{}, conflictName(name(pod))
	}
	if _, _, ok := b.localFind(id); ok {
		return container.CreateResponse{}, conflictName(name(pod))
	}
	for _, o := range r.Manifests.Objects() {
		if set, ok := o.(*appsv1.StatefulSet); ok {
			err = b.applyStatefulSet(ctx, set)
		} else {
			_, _, err = b.apply(ctx, o)
		}
		if err != nil {
			return container.CreateResponse{}, err
		}
	}
	b.setLocal(id, &local{pod: pod, state: localCreated})
	b.event(pod, events.ActionCreate, nil)
	return container.CreateResponse{ID: id}, nil
}

// configHash is com.docker.compose.config-hash of a pod template (an
// annotation: 64 characters do not fit a label value).
func configHash(t *corev1.PodTemplateSpec) string {
	if h := t.Labels[compose.LabelConfigHash]; h != "" {
		return h
	}
	return t.Annotations[compose.LabelConfigHash]
}

// startReplica scales the StatefulSet to include the replica. A
// StatefulSet runs ordinals 1..replicas: starting replica 3 of a service
// whose 1 and 2 are stopped starts them too.
func (b *Backend) startReplica(ctx context.Context, id string, l *local) error {
	k, n := keyOf(l.pod), ordinal(l.pod)
	// depends_on: compose v2 waits for its dependencies before it starts a
	// service, by their inspect; the backend waits too (docker start of a
	// replica, compose up --no-start then start), by the same rule as up
	if err := b.waitDependencies(ctx, k.ns, k.service, dependencies(l.pod.Labels, l.pod.Annotations)); err != nil {
		return err
	}
	if one, err := b.oneShot(ctx, k.ns, k.service); err != nil {
		return err
	} else if one {
		return b.startOneShot(ctx, id, l)
	}
	b.scaleMu.Lock()
	defer b.scaleMu.Unlock()
	cur, err := b.replicas(ctx, k)
	if err != nil {
		return err
	}
	b.mu.Lock()
	for i := 1; i <= n; i++ {
		delete(b.down[k], i)
	}
	var woken []string
	for lid, o := range b.local {
		if o.state == localStopped && keyOf(o.pod) == k && ordinal(o.pod) > cur && ordinal(o.pod) <= n {
			woken = append(woken, lid)
		}
	}
	b.mu.Unlock()
	if n > cur {
		if err := b.setReplicas(ctx, k, n); err != nil {
			return err
		}
	}
	for _, lid := range append(woken, id) {
		if _, o, ok := b.localFind(lid); ok {
			b.setLocal(lid, &local{pod: cleanCopy(o.pod), state: localStarting})
		}
	}
	return nil
}

// replicas is the StatefulSet's spec.replicas.
func (b *Backend) replicas(ctx context.Context, k svcKey) (int, error) {
	ss, err := b.c.AppsV1().StatefulSets(k.ns).Get(ctx, k.service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such service: %s in namespace %s", k.service, k.ns))
	}
	if err != nil {
		return 0, fromAPI(err)
	}
	if ss.Spec.Replicas == nil {
		return 1, nil
	}
	return int(*ss.Spec.Replicas), nil
}

func (b *Backend) setReplicas(ctx context.Context, k svcKey, n int) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	_, err := b.c.AppsV1().StatefulSets(k.ns).Patch(ctx, k.service, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("scale %s/%s to %d: %w", k.ns, k.service, n, fromAPI(err))
	}
	return nil
}

// lowerReplicas scales the StatefulSet down past every top ordinal that
// is down, and answers the replicas it runs now.
func (b *Backend) lowerReplicas(ctx context.Context, k svcKey) (int, error) {
	b.scaleMu.Lock()
	defer b.scaleMu.Unlock()
	cur, err := b.replicas(ctx, k)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	target := cur
	for target >= 1 && b.down[k][target] {
		target--
	}
	b.mu.Unlock()
	if target < cur {
		if err := b.setReplicas(ctx, k, target); err != nil {
			return 0, err
		}
	}
	return target, nil
}
