package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
	"github.com/berthd/berth/runtime"
)

// One-shot services (docs/kubernetes.md, "depends_on"): a service that
// another depends on with service_completed_successfully runs each replica
// as a Pod the kubelet does not restart (kube.OneShotPod), its StatefulSet
// at 0 replicas; a dependent starts once every such pod has exited 0.

// isOneShotPod says whether a pod is a one-shot replica's.
func isOneShotPod(p *corev1.Pod) bool { return p.Annotations[kube.AnnotationReplicaOf] != "" }

// oneShot says whether the service of a StatefulSet in ns is one that
// others there depend on by completion.
func (b *Backend) oneShot(ctx context.Context, ns, service string) (bool, error) {
	list, err := b.c.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{LabelSelector: ownedSelector})
	if err != nil {
		return false, fromAPI(err)
	}
	sets := make([]*appsv1.StatefulSet, len(list.Items))
	for i := range list.Items {
		sets[i] = &list.Items[i]
	}
	return kube.OneShot(service, sets), nil
}

// applyOneShot applies a one-shot replica's pod and waits until the
// informer has it, so that a dependent's wait sees it. A pod of another
// spec (the service changed) or one that ended is replaced: a pod's spec
// cannot change, and a pod does not run twice.
func (b *Backend) applyOneShot(ctx context.Context, p *corev1.Pod) error {
	id := containerID(p)
	if cur, ok := b.inCluster(id); ok && (configHash(&corev1.PodTemplateSpec{ObjectMeta: cur.ObjectMeta}) != configHash(&corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta}) || podState(cur, b.now()).status == container.StateExited) {
		b.quietly(cur)
		if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(cur.Namespace).Delete(ctx, cur.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))); err != nil {
			return err
		}
		if err := b.waitUntil(ctx, func() bool { _, ok := b.inCluster(id); return !ok }); err != nil {
			return fmt.Errorf("one-shot pod %s/%s: waiting for the old one to go: %w", cur.Namespace, cur.Name, err)
		}
	}
	if _, _, err := b.apply(ctx, p); err != nil {
		return err
	}
	seen := func() bool {
		cur, ok := b.inCluster(id)
		return ok && cur.DeletionTimestamp == nil
	}
	return b.waitUntil(ctx, seen)
}

// startOneShot is the start of a one-shot replica (compose v2's start, or
// docker start): its pod applied from the StatefulSet's template.
func (b *Backend) startOneShot(ctx context.Context, id string, l *local) error {
	k, n := keyOf(l.pod), ordinal(l.pod)
	ss, err := b.c.AppsV1().StatefulSets(k.ns).Get(ctx, k.service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such service: %s in namespace %s", k.service, k.ns))
	}
	if err != nil {
		return fromAPI(err)
	}
	p := kube.OneShotPod(ss, n, b.now())
	b.setLocal(id, &local{pod: p, state: localStarting})
	if err := b.applyOneShot(ctx, p); err != nil {
		b.setLocal(id, &local{pod: l.pod, state: l.state})
		return err
	}
	return nil
}

// completed is service_completed_successfully of a service in ns: every
// replica that was started has exited 0 (a replica compose did not start,
// or that has no pod, is not waited for); one that exited otherwise fails
// it, in compose's words.
func (b *Backend) completed(ns, service string) (bool, error) {
	pods, err := b.ownedPods()
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		if p.Namespace != ns || !isReplica(p) || p.Labels[compose.LabelService] != service {
			continue
		}
		st := podState(p, b.now())
		if st.status != container.StateExited {
			return false, nil
		}
		if st.exitCode != 0 {
			return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("service %q didn't complete successfully: exit %d", service, st.exitCode))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.local {
		if l.state == localStarting && isReplica(l.pod) && keyOf(l.pod) == (svcKey{ns, service}) {
			return false, nil // applied, not seen yet
		}
	}
	return true, nil
}

// stopOneShot stops or kills a one-shot replica as a plain pod is stopped:
// its pod deleted and kept as an exited container.
func (b *Backend) stopOneShot(ctx context.Context, p *corev1.Pod, grace *int64, code int32) error {
	b.quietly(p)
	b.preStopped(p, code)
	if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: grace}))); err != nil {
		b.setLocal(containerID(p), nil)
		return err
	}
	return b.recordStopped(ctx, p, grace, code)
}

// removeOneShot removes a one-shot replica's pod (a running one needs
// force); the service's objects go with its last container.
func (b *Backend) removeOneShot(ctx context.Context, p *corev1.Pod, opts runtime.RemoveOptions) error {
	if podState(p, b.now()).status == container.StateRunning && !opts.Force {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", name(p)))
	}
	b.quietly(p)
	if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))); err != nil {
		return err
	}
	id := containerID(p)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.waitUntil(wctx, func() bool { _, ok := b.inCluster(id); return !ok }); err != nil {
		return fmt.Errorf("container %s: pod %s/%s not gone: %w", name(p), p.Namespace, p.Name, err)
	}
	b.setLocal(id, nil)
	b.event(p, events.ActionDestroy, nil)
	if opts.RemoveVolumes {
		if err := b.removeAnonymous(ctx, p); err != nil {
			return err
		}
	}
	return b.retireService(ctx, keyOf(p))
}
