package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/runtime"
)

// Exit codes of a container berth stopped, when the kubelet reported none
// before the pod went away: a kill is SIGKILL's 137, a stop is taken as a
// clean exit.
const (
	killedCode  = 137
	stoppedCode = 0
)

// defaultStopWindow is how long the stop of a compose replica waits for
// the stops of the replicas above it (docker compose stop sends them all
// at once): a StatefulSet stops its highest ordinals first.
const defaultStopWindow = 5 * time.Second

// Stop stops a container: a plain Pod is deleted (its spec kept, so start
// applies it again), a compose replica is scaled away. timeout is the
// pod's grace period, as it is Docker's time before SIGKILL.
func (b *Backend) Stop(ctx context.Context, ref, signal string, timeout *int) error {
	if signal != "" && !isSignal(signal, "TERM", "15") {
		return notImplemented(fmt.Sprintf("stop signal %s (the kubelet stops containers with SIGTERM); a stop with another signal", signal))
	}
	var grace *int64
	if timeout != nil && *timeout >= 0 {
		grace = ptr(int64(*timeout))
	}
	return b.halt(ctx, ref, grace, stoppedCode, true)
}

// Kill kills a running container: SIGKILL (the default) is a deletion
// with no grace period, SIGTERM one with the pod's own. The kubelet sends
// no other signal.
func (b *Backend) Kill(ctx context.Context, ref, signal string) error {
	var grace *int64
	code := int32(killedCode)
	switch {
	case signal == "" || isSignal(signal, "KILL", "9"):
		grace = ptr(int64(0))
	case isSignal(signal, "TERM", "15"):
		code = 128 + 15
	default:
		return notImplemented(fmt.Sprintf("signal %s (the kubelet sends only SIGTERM, then SIGKILL); kill with another signal", signal))
	}
	return b.halt(ctx, ref, grace, code, false)
}

func isSignal(s string, names ...string) bool {
	s = strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}

// halt stops (stop) or kills (!stop) the container ref.
func (b *Backend) halt(ctx context.Context, ref string, grace *int64, code int32, stop bool) error {
	p, err := b.lookup(ref)
	if err != nil && stop && b.beingReplaced(ref) {
		return nil // compose stops the replaced one by its id; its pod is being replaced
	}
	if err != nil {
		_, l, ok := b.localFind(ref)
		switch {
		case !ok:
			return err
		case stop:
			return errdefs.ErrNotModified
		}
		return notRunning(name(l.pod))
	}
	st := podState(p, b.now())
	if stop && isReplica(p) && st.status != container.StateRemoving && b.beingReplaced(containerID(p)) {
		return b.stopReplaced(ctx, p, grace)
	}
	if st.status == container.StateExited || st.status == container.StateRemoving {
		if stop {
			return errdefs.ErrNotModified
		}
		return notRunning(name(p))
	}
	if !stop {
		b.event(p, events.ActionKill, map[string]string{"signal": killSignal(grace)})
	}
	if isOneShotPod(p) {
		err = b.stopOneShot(ctx, p, grace, code)
	} else if isReplica(p) {
		err = b.stopReplica(ctx, p, grace, code)
	} else {
		b.quietly(p)
		b.preStopped(p, code)
		err = fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: grace})))
		if err == nil {
			err = b.recordStopped(ctx, p, grace, code)
		} else {
			b.setLocal(containerID(p), nil)
		}
	}
	if err == nil && stop {
		b.event(p, events.ActionStop, nil)
	}
	return err
}

func killSignal(grace *int64) string {
	if grace != nil && *grace == 0 {
		return "9"
	}
	return "15"
}

func notRunning(n string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot kill container: %s: container %s is not running", n, n))
}

// stopReplica marks replica n of its service down and scales the
// StatefulSet below it once every replica above it is down too; a replica
// with running ones above it that stay up is refused (409) after the stop
// window.
func (b *Backend) stopReplica(ctx context.Context, p *corev1.Pod, grace *int64, code int32) error {
	k, n := keyOf(p), ordinal(p)
	b.mu.Lock()
	if b.down[k] == nil {
		b.down[k] = map[int]bool{}
	}
	b.down[k][n] = true
	b.quiet[containerID(p)] = true
	b.mu.Unlock()
	b.preStopped(p, code)
	wctx, cancel := context.WithTimeout(ctx, b.stopWindow)
	defer cancel()
	var scaleErr error
	target := 0
	err := b.waitUntil(wctx, func() bool {
		target, scaleErr = b.lowerReplicas(ctx, k)
		return scaleErr != nil || n > target
	})
	if scaleErr != nil || err != nil {
		b.mu.Lock()
		delete(b.down[k], n)
		delete(b.quiet, containerID(p))
		b.mu.Unlock()
		b.setLocal(containerID(p), nil)
		if scaleErr != nil {
			return scaleErr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot stop container %s alone: its StatefulSet %s/%s runs replicas 1 to %d and removes the highest first; stop the replicas above it too (docker compose stop does), or scale the service", name(p), k.ns, k.service, target))
	}
	if grace != nil {
		// the controller deletes with the pod's grace period; a stop's
		// timeout or a kill shortens it
		if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: grace}))); err != nil {
			b.setLocal(containerID(p), nil)
			return err
		}
	}
	return b.recordStopped(ctx, p, grace, code)
}

// preStopped records the container as stopped before berth deletes its
// pod, so that no one sees it missing in between: while the pod is there,
// it is what lookups, lists and waits read.
func (b *Backend) preStopped(p *corev1.Pod, code int32) {
	b.setLocal(containerID(p), &local{pod: stoppedCopy(p, code, b.now()), state: localStopped})
}

// recordStopped waits until the pod is gone and keeps it as an exited
// container, with the exit code the kubelet last reported, else code.
func (b *Backend) recordStopped(ctx context.Context, p *corev1.Pod, grace *int64, code int32) error {
	wait := 30 * time.Second
	if s := p.Spec.TerminationGracePeriodSeconds; s != nil {
		wait = time.Duration(*s) * time.Second
	}
	if grace != nil {
		wait = time.Duration(*grace) * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, wait+time.Minute)
	defer cancel()
	id, last := containerID(p), p
	err := b.waitUntil(wctx, func() bool {
		cur, ok := b.inCluster(id)
		if ok {
			last = cur
		}
		return !ok
	})
	if err != nil {
		b.setLocal(id, nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("container %s: pod %s/%s was not gone %s after its stop", name(p), p.Namespace, p.Name, wait+time.Minute))
	}
	if st := podState(last, b.now()); st.status == container.StateExited {
		code = int32(st.exitCode)
	}
	b.setLocal(id, &local{pod: stoppedCopy(last, code, b.now()), state: localStopped})
	return nil
}

// removeReplica removes a replica the cluster runs: with force it is
// killed first (scaled away), then forgotten; the service's objects go
// with its last container.
func (b *Backend) removeReplica(ctx context.Context, p *corev1.Pod, opts runtime.RemoveOptions) error {
	if !opts.Force {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", name(p)))
	}
	if err := b.stopReplica(ctx, p, ptr(int64(0)), killedCode); err != nil {
		return err
	}
	b.setLocal(containerID(p), nil)
	b.event(p, events.ActionDestroy, nil)
	if opts.RemoveVolumes {
		if err := b.removeAnonymous(ctx, p); err != nil {
			return err
		}
	}
	return b.retireService(ctx, keyOf(p))
}

// removeAnonymous is rm -v of a replica: the claims its StatefulSet made
// for it from its claim templates (its anonymous volumes,
// <template>-<pod>), as Docker removes a container's anonymous volumes.
func (b *Backend) removeAnonymous(ctx context.Context, p *corev1.Pod) error {
	k := keyOf(p)
	ss, err := b.c.AppsV1().StatefulSets(k.ns).Get(ctx, k.service, metav1.GetOptions{})
	if err != nil {
		return fromAPI(ignoreGone(err))
	}
	for _, tmpl := range ss.Spec.VolumeClaimTemplates {
		claim := tmpl.Name + "-" + p.Name
		if err := ignoreGone(b.c.CoreV1().PersistentVolumeClaims(k.ns).Delete(ctx, claim, metav1.DeleteOptions{})); err != nil {
			return fmt.Errorf("delete PersistentVolumeClaim %s/%s: %w", k.ns, claim, fromAPI(err))
		}
	}
	return nil
}

// retireService deletes a service's StatefulSet and Services once it has
// no container left (docker compose down removes them one by one); its
// claims stay, as compose keeps volumes.
func (b *Backend) retireService(ctx context.Context, k svcKey) error {
	b.mu.Lock()
	for _, l := range b.local {
		if isReplica(l.pod) && keyOf(l.pod) == k {
			b.mu.Unlock()
			return nil
		}
	}
	b.mu.Unlock()
	pods, err := b.ownedPods()
	if err != nil {
		return err
	}
	for _, p := range pods {
		if isReplica(p) && keyOf(p) == k {
			return nil
		}
	}
	n, err := b.replicas(ctx, k)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil || n > 0 {
		return err
	}
	if err := ignoreGone(b.c.AppsV1().StatefulSets(k.ns).Delete(ctx, k.service, metav1.DeleteOptions{})); err != nil {
		return fmt.Errorf("delete StatefulSet %s/%s: %w", k.ns, k.service, fromAPI(err))
	}
	svcs, err := b.c.CoreV1().Services(k.ns).List(ctx, metav1.ListOptions{LabelSelector: ownedSelector + ",com.docker.compose.service=" + k.service})
	if err != nil {
		return fromAPI(err)
	}
	for _, s := range svcs.Items {
		if err := ignoreGone(b.c.CoreV1().Services(k.ns).Delete(ctx, s.Name, metav1.DeleteOptions{})); err != nil {
			return fmt.Errorf("delete Service %s/%s: %w", k.ns, s.Name, fromAPI(err))
		}
	}
	b.mu.Lock()
	delete(b.down, k)
	b.mu.Unlock()
	return nil
}

// Wait waits for a container's condition, as dockerd's: not-running (the
// default) holds at once for a container that does not run, next-exit at
// its next exit (or restart), removed once it is gone.
func (b *Backend) Wait(ctx context.Context, ref string, cond container.WaitCondition) (<-chan runtime.WaitResult, error) {
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid condition: " + string(cond))
	}
	var id string
	if p, err := b.lookup(ref); err == nil {
		id = containerID(p)
	} else if lid, _, ok := b.localFind(ref); ok {
		id = lid
	} else {
		return nil, err
	}
	out := make(chan runtime.WaitResult, 1)
	go func() {
		var res runtime.WaitResult
		first, wasRunning, restarts := true, false, 0
		// left: the container was seen not exited (created, starting,
		// running) since the wait began, so an exit now is a new one
		left := false
		err := b.waitUntil(ctx, func() bool {
			st, exists := b.stateOf(id)
			running := exists && (st.status == container.StateRunning || st.status == container.StateRestarting)
			if exists {
				res.ExitCode = st.exitCode
			} else if code, ok := b.exitOf(id); ok {
				res.ExitCode = code
			}
			if first {
				first, restarts = false, st.restarts
			}
			restarted := exists && st.restarts > restarts
			wasRunning = wasRunning || running
			// an exit after the container was seen not exited: a pod that
			// ran and ended between two looks was never seen running
			// (docker run of a short command); the exit there was at the
			// first look, recorded again when its pod is replaced, is not
			left = left || exists && st.status != container.StateExited && st.status != container.StateRemoving
			exitedSince := left && exists && st.status == container.StateExited
			switch cond {
			case container.WaitConditionRemoved:
				return !exists
			case container.WaitConditionNextExit:
				return wasRunning && (!running || restarted) || restarted || exitedSince
			}
			return !running
		})
		if err != nil {
			res.Err = errors.Join(errors.New("wait ended before the condition held"), err)
		}
		out <- res
	}()
	return out, nil
}

// stateOf is the state of a container by id: the cluster's pod, else
// berth's record.
func (b *Backend) stateOf(id string) (state, bool) {
	if p, ok := b.inCluster(id); ok {
		return podState(p, b.now()), true
	}
	b.mu.Lock()
	l, ok := b.local[id]
	b.mu.Unlock()
	if !ok {
		return state{}, false
	}
	return podState(l.pod, b.now()), true
}

// exitOf is the exit code of a removed record.
func (b *Backend) exitOf(id string) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	code, ok := b.exits[id]
	return code, ok
}
