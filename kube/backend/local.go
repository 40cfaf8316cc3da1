package backend

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/internal/filters"
)

// localState is what berthd knows of a container the cluster has no pod
// for (yet, or any more): Docker has containers that exist without running,
// Kubernetes has no such pods. These records live in berthd's memory and
// are kept in the cluster for the next berthd: a compose replica's on its
// StatefulSet (records.go), a plain container's in a ConfigMap of the
// default namespace (plainrecords.go).
type localState int

const (
	// localCreated: created, not started (a plain Pod kept until start, or
	// a compose replica above its StatefulSet's replicas).
	localCreated localState = iota
	// localStarting: started; shown until the informer has the pod, so that
	// compose, which lists right after its starts, sees the container.
	localStarting
	// localStopped: stopped by berth (the pod deleted or scaled away); shown
	// as exited, started again by applying it (or scaling up) once more.
	localStopped
)

type local struct {
	pod   *corev1.Pod // as presented; for localStopped with a terminated status
	state localState
}

// setLocal records (or with nil forgets) a container by id and wakes the
// waiters.
func (b *Backend) setLocal(id string, l *local) {
	b.mu.Lock()
	old := b.local[id]
	if l == nil {
		if old, ok := b.local[id]; ok {
			if len(b.exits) > maxExits {
				clear(b.exits)
			}
			b.exits[id] = podState(old.pod, b.now()).exitCode
		}
		delete(b.local, id)
	} else {
		delete(b.exits, id)
		b.local[id] = l
	}
	b.mu.Unlock()
	b.notify()
	// the created and stopped records are kept for the next berthd: a
	// compose replica's on its StatefulSet (records.go), a plain
	// container's in a ConfigMap (plainrecords.go)
	for _, r := range []*local{old, l} {
		if r != nil && isReplica(r.pod) && r.state != localStarting {
			b.recordsChanged(keyOf(r.pod))
			break
		}
	}
	for _, r := range []*local{old, l} {
		if r != nil && !isReplica(r.pod) && r.state != localStarting {
			b.plainRecordsChanged()
			break
		}
	}
}

// localFind finds a container record by id, unique id prefix or name.
func (b *Backend) localFind(ref string) (string, *local, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := strings.TrimPrefix(ref, "/")
	for id, l := range b.local {
		if id == ref || name(l.pod) == want || len(ref) >= 4 && strings.HasPrefix(id, ref) {
			return id, l, true
		}
	}
	return "", nil, false
}

// maxExits bounds the exit codes kept for waits on removed containers.
const maxExits = 1000

// podSeen drops the starting record of a pod the informer now has, and
// wakes the waiters.
func (b *Backend) podSeen(o any) {
	if p, ok := o.(*corev1.Pod); ok {
		id := containerID(p)
		b.mu.Lock()
		if l := b.local[id]; l != nil && l.state == localStarting {
			delete(b.local, id)
		}
		b.mu.Unlock()
	}
	b.notify()
}

// notify wakes everything waiting for a change of pods or records.
func (b *Backend) notify() {
	b.mu.Lock()
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// changes is closed at the next change of pods or records.
func (b *Backend) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// waitUntil waits until cond holds, re-checking at every change; it gives
// up when ctx ends.
func (b *Backend) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		ch := b.changes()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inCluster says whether the informer has the pod of a container id.
func (b *Backend) inCluster(id string) (*corev1.Pod, bool) {
	pods, _ := b.ownedPods()
	for _, p := range pods {
		if containerID(p) == id {
			return p, true
		}
	}
	return nil, false
}

// localSummaries lists the records the cluster has no pod for (with all or
// a status filter); a starting record whose pod has appeared is dropped.
func (b *Backend) localSummaries(f filters.Args, all bool, clusterIDs map[string]bool) []container.Summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []container.Summary
	for id, l := range b.local {
		if clusterIDs[id] {
			if l.state == localStarting {
				delete(b.local, id)
			}
			continue
		}
		s := summary(l.pod, b.now())
		if (all || s.State == container.StateRunning) && match(f, s) {
			out = append(out, s)
		}
	}
	return out
}

// stoppedCopy is a pod as a stopped container: its spec, no cluster
// state, and an exited main container.
func stoppedCopy(p *corev1.Pod, code int32, now time.Time) *corev1.Pod {
	c := cleanCopy(p)
	c.CreationTimestamp = p.CreationTimestamp
	st := podState(p, now)
	term := &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(now), StartedAt: metav1.NewTime(st.started)}
	c.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		c.Status.Phase = corev1.PodFailed
	}
	c.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: mainContainer(p).Name, State: corev1.ContainerState{Terminated: term}, Image: mainContainer(p).Image}}
	return c
}

// cleanCopy is the part of a pod berth applies: names, labels,
// annotations and spec, none of the cluster's (node, uid, status).
func cleanCopy(p *corev1.Pod) *corev1.Pod {
	c := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations, CreationTimestamp: p.CreationTimestamp},
		Spec:       *p.Spec.DeepCopy(),
	}
	c.Spec.NodeName = ""
	return c
}
