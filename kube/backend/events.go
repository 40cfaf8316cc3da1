package backend

import (
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/moby/moby/api/types/events"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/berthd/berth/internal/safe"
)

// The pod watch as Docker's container events (GET /events): a pod that
// appears is created, its main container starting to run is start, ending
// (or restarting) is die with the exit code, a pod that goes away is
// destroyed, unless berth deleted it to stop the container (the container
// still exists: `docker ps -a` shows it exited). The informer's first list
// is the state at start-up, not news: it publishes nothing.

func (b *Backend) handlers() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(o any, initial bool) {
			defer safe.Recover("kube backend: pod added")
			if p, ok := o.(*corev1.Pod); ok && !initial {
				b.podAdded(p)
			}
			b.podSeen(o)
		},
		UpdateFunc: func(old, cur any) {
			defer safe.Recover("kube backend: pod updated")
			o, ok1 := old.(*corev1.Pod)
			p, ok2 := cur.(*corev1.Pod)
			if ok1 && ok2 {
				b.podUpdated(o, p)
			}
			b.podSeen(cur)
		},
		DeleteFunc: func(o any) {
			defer safe.Recover("kube backend: pod deleted")
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				b.podDeleted(p)
			}
			b.notify()
		},
	}
}

func (b *Backend) podAdded(p *corev1.Pod) {
	b.mu.Lock()
	_, known := b.local[containerID(p)] // its create was published then
	b.mu.Unlock()
	if !known {
		b.event(p, events.ActionCreate, nil)
	}
	if isRunning(p) {
		b.event(p, events.ActionStart, nil)
	}
}

func (b *Backend) podUpdated(old, p *corev1.Pod) {
	was, now := isRunning(old), isRunning(p)
	switch {
	case was && now && restarts(p) > restarts(old):
		// the kubelet restarted it between two looks
		b.event(p, events.ActionDie, exitAttr(lastExit(p)))
		b.event(p, events.ActionStart, nil)
	case !was && now:
		b.event(p, events.ActionStart, nil)
	case was && !now:
		b.event(p, events.ActionDie, exitAttr(podState(p, b.now()).exitCode))
	}
}

func (b *Backend) podDeleted(p *corev1.Pod) {
	if isRunning(p) {
		b.event(p, events.ActionDie, exitAttr(podState(p, b.now()).exitCode))
	}
	id := containerID(p)
	b.forgetExecs(id)
	b.attaches.forget(id)
	b.mu.Lock()
	quiet := b.quiet[id]
	delete(b.quiet, id)
	b.mu.Unlock()
	if !quiet {
		b.event(p, events.ActionDestroy, nil)
	}
}

// quietly marks a pod berth deletes to stop its container: its deletion
// is no destroy.
func (b *Backend) quietly(p *corev1.Pod) {
	b.mu.Lock()
	b.quiet[containerID(p)] = true
	b.mu.Unlock()
}

func isRunning(p *corev1.Pod) bool {
	return podState(p, time.Time{}).status == container.StateRunning
}

func restarts(p *corev1.Pod) int { return podState(p, time.Time{}).restarts }

// lastExit is the exit code of the run before the kubelet's restart.
func lastExit(p *corev1.Pod) int {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == mainContainer(p).Name && cs.LastTerminationState.Terminated != nil {
			return int(cs.LastTerminationState.Terminated.ExitCode)
		}
	}
	return 0
}

func exitAttr(code int) map[string]string {
	return map[string]string{"exitCode": strconv.Itoa(code)}
}

// event publishes a container event with dockerd's attributes: the
// container's labels, name and image, and extra.
func (b *Backend) event(p *corev1.Pod, action events.Action, extra map[string]string) {
	labels := dockerLabels(p)
	attrs := make(map[string]string, len(labels)+2+len(extra))
	for k, v := range labels {
		attrs[k] = v
	}
	attrs["name"] = strings.TrimPrefix(name(p), "/")
	attrs["image"] = mainContainer(p).Image
	for k, v := range extra {
		attrs[k] = v
	}
	b.bus.Publish(events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: containerID(p), Attributes: attrs}})
}
