package backend

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/berthd/berth/kube"
)

// How compose v2 recreates a replica of a changed service, and what the
// backend makes of each step (docs/kubernetes.md, "Compose v2 against the
// backend"):
//
//  1. create <id12>_<project>-<svc>-<n> with com.docker.compose.replace:
//     the service's new StatefulSet is applied (applyStatefulSet: the
//     controller rolls its pods to the new template), and the new container
//     is a record under its temporary name;
//  2. stop of the old replica: its pod is deleted, and the controller makes
//     it again from the new template (the roll, sooner);
//  3. rm of the old replica: forgotten (the StatefulSet keeps the service,
//     its claims and its id, which the new pod has: the same name);
//  4. rename of the temporary name to the replica's: the record goes, and
//     the replica is its pod (or a created record, when its StatefulSet
//     does not run its ordinal), which compose then starts.

// replacement is a pending recreate of one replica.
type replacement struct {
	tmpID string // the new container's id until the rename
	oldID string // the replica's id (its pod's), which the new one takes
}

// createReplacement is step 1.
func (b *Backend) createReplacement(ctx context.Context, r *kube.Replica, cur *appsv1.StatefulSet, tmpName string) (container.CreateResponse, error) {
	ss := r.Manifests.StatefulSets[0]
	ss.Spec.Replicas = cur.Spec.Replicas // a create changes no running replica
	for _, o := range r.Manifests.Objects() {
		if set, ok := o.(*appsv1.StatefulSet); ok {
			if err := b.applyStatefulSet(ctx, set); err != nil {
				return container.CreateResponse{}, err
			}
			continue
		}
		if _, _, err := b.apply(ctx, o); err != nil {
			return container.CreateResponse{}, err
		}
	}
	pod := kube.ReplicaPod(ss, r.Number, b.now())
	oldID := containerID(pod)
	// the new container has its own id and name until the rename: the old
	// one, with the pod's, is still there
	tmp := pod.DeepCopy()
	tmp.Name += "-recreate"
	tmp.Annotations = maps.Clone(tmp.Annotations)
	if tmp.Annotations == nil {
		tmp.Annotations = map[string]string{}
	}
	tmp.Annotations[kube.AnnotationContainerName] = strings.TrimPrefix(tmpName, "/")
	tmpID := containerID(tmp)
	if _, _, ok := b.localFind(tmpID); ok {
		return container.CreateResponse{}, conflictName(tmpName)
	}
	b.mu.Lock()
	b.replacing[tmpID] = replacement{tmpID: tmpID, oldID: oldID}
	b.mu.Unlock()
	b.setLocal(tmpID, &local{pod: tmp, state: localCreated})
	b.event(tmp, events.ActionCreate, nil)
	return container.CreateResponse{ID: tmpID}, nil
}

// beingReplaced says whether a replica (by its pod's id) has a pending
// recreate.
func (b *Backend) beingReplaced(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.replacing {
		if r.oldID == id {
			return true
		}
	}
	return false
}

// stopReplaced is step 2 for a replica with a pod.
func (b *Backend) stopReplaced(ctx context.Context, p *corev1.Pod, grace *int64) error {
	if p.DeletionTimestamp == nil {
		if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: grace}))); err != nil {
			return err
		}
	}
	b.event(p, events.ActionStop, nil)
	return nil
}

// removeReplaced is step 3: the old record, if the replica had no pod, is
// forgotten; a pod is the new container's already (or soon).
func (b *Backend) removeReplaced(id string) {
	b.mu.Lock()
	l := b.local[id]
	b.mu.Unlock()
	if l != nil {
		b.setLocal(id, nil)
		b.event(l.pod, events.ActionDestroy, nil)
	}
}

// Rename serves only step 4: compose's rename of a recreated replica to
// its own name.
func (b *Backend) Rename(ctx context.Context, oldName, newName string) error {
	id, l, ok := b.localFind(oldName)
	b.mu.Lock()
	r, pending := b.replacing[id]
	b.mu.Unlock()
	if !ok || !pending {
		return notImplemented("rename")
	}
	ss, err := b.c.AppsV1().StatefulSets(l.pod.Namespace).Get(ctx, keyOf(l.pod).service, metav1.GetOptions{})
	if err != nil {
		return fromAPI(err)
	}
	n := ordinal(l.pod)
	pod := kube.ReplicaPod(ss, n, l.pod.CreationTimestamp.Time)
	if want := name(pod); strings.TrimPrefix(newName, "/") != want {
		return notSupported(fmt.Sprintf("renaming %s to %s", name(l.pod), newName), "a replica's name is "+want)
	}
	state := localCreated
	if n <= wantReplicas(ss) {
		state = localStarting // the StatefulSet runs it: its pod is coming
	}
	b.mu.Lock()
	delete(b.replacing, id)
	b.mu.Unlock()
	b.setLocal(id, nil)
	if _, inCluster := b.inCluster(r.oldID); !inCluster || state == localCreated {
		b.setLocal(r.oldID, &local{pod: pod, state: state})
	}
	b.event(pod, events.ActionRename, map[string]string{"oldName": "/" + name(l.pod)})
	return nil
}

// applyStatefulSet applies a StatefulSet; when a field the API server
// does not let change (volumeClaimTemplates, serviceName, selector,
// podManagementPolicy) differs from the one in the cluster, the old one is
// deleted first with orphan semantics: its pods and claims stay, and the
// new one adopts them and rolls them to its template. The replicas'
// records (an annotation of the old one) are written again.
func (b *Backend) applyStatefulSet(ctx context.Context, ss *appsv1.StatefulSet) error {
	cur, err := b.c.AppsV1().StatefulSets(ss.Namespace).Get(ctx, ss.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fromAPI(err)
	case cur.Labels[kube.LabelManagedBy] != kube.ManagedBy:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("StatefulSet %s/%s exists and is not berth's", ss.Namespace, ss.Name))
	case immutableChanged(cur, ss):
		if err := b.orphanStatefulSet(ctx, cur); err != nil {
			return err
		}
		defer b.recordsChanged(svcKey{ss.Namespace, ss.Name})
	}
	_, _, err = b.apply(ctx, ss)
	return err
}

// orphanTimeout bounds the wait for the garbage collector to finish the
// orphaning delete of a StatefulSet.
const orphanTimeout = 2 * time.Minute

func (b *Backend) orphanStatefulSet(ctx context.Context, cur *appsv1.StatefulSet) error {
	sets := b.c.AppsV1().StatefulSets(cur.Namespace)
	del := metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationOrphan), Preconditions: &metav1.Preconditions{UID: &cur.UID}}
	if err := ignoreGone(sets.Delete(ctx, cur.Name, del)); err != nil {
		return fmt.Errorf("delete StatefulSet %s/%s to change its immutable fields: %w", cur.Namespace, cur.Name, fromAPI(err))
	}
	// the orphan finalizer keeps it until its pods are released
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, orphanTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := sets.Get(ctx, cur.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && got.UID != cur.UID, fromAPI(err)
	})
	if err != nil {
		return fmt.Errorf("StatefulSet %s/%s: waiting for its orphaning delete: %w", cur.Namespace, cur.Name, err)
	}
	return nil
}

// immutableChanged compares what berth sets of the fields a StatefulSet
// cannot change (the API server defaults others in them, which berth does
// not set and must not compare).
func immutableChanged(cur, want *appsv1.StatefulSet) bool {
	if cur.Spec.ServiceName != want.Spec.ServiceName || cur.Spec.PodManagementPolicy != want.Spec.PodManagementPolicy && want.Spec.PodManagementPolicy != "" {
		return true
	}
	if !maps.Equal(selectorLabels(cur), selectorLabels(want)) {
		return true
	}
	return !slices.Equal(claimTemplates(cur), claimTemplates(want))
}

func selectorLabels(ss *appsv1.StatefulSet) map[string]string {
	if ss.Spec.Selector == nil {
		return nil
	}
	return ss.Spec.Selector.MatchLabels
}

// claimTemplates are the claim templates as name, access modes and size,
// sorted (berth sets no storage class; the cluster may).
func claimTemplates(ss *appsv1.StatefulSet) []string {
	var out []string
	for _, c := range ss.Spec.VolumeClaimTemplates {
		var modes []string
		for _, m := range c.Spec.AccessModes {
			modes = append(modes, string(m))
		}
		size := c.Spec.Resources.Requests[corev1.ResourceStorage]
		out = append(out, c.Name+" "+strings.Join(modes, ",")+" "+size.String())
	}
	slices.Sort(out)
	return out
}
