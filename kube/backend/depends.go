package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/compose"
)

// dependency is one entry of compose's com.docker.compose.depends_on
// ("svc:condition:restart,..."), which kube.Translate and compose v2's
// creates put on the StatefulSet and its pod template.
type dependency struct {
	service   string
	condition string
}

// dependencies reads the depends_on annotation (or label) of an object.
func dependencies(labels, annotations map[string]string) []dependency {
	v := annotations[compose.LabelDependsOn]
	if v == "" {
		v = labels[compose.LabelDependsOn]
	}
	var out []dependency
	for part := range strings.SplitSeq(v, ",") {
		svc, rest, _ := strings.Cut(strings.TrimSpace(part), ":")
		if svc == "" {
			continue
		}
		cond, _, _ := strings.Cut(rest, ":")
		if cond == "" {
			cond = compose.ConditionStarted
		}
		out = append(out, dependency{service: svc, condition: cond})
	}
	return out
}

// waitDependencies waits until every dependency of a service in namespace
// ns meets its condition, by the pods the informer has: service_started
// when each of its replicas runs, service_healthy when each is ready
// (healthy). This is the controller waiting of depends_on: a service's
// StatefulSet is applied (berth compose up), or scaled up (compose v2's
// start), only then. A dependency with no StatefulSet or none of its
// replicas asked for (stopped, or left out by --no-deps) has nothing to
// wait for. It fails as compose does: a dependency that exited, is
// unhealthy, or has no healthcheck to be healthy by.
func (b *Backend) waitDependencies(ctx context.Context, ns, service string, deps []dependency) error {
	if len(deps) == 0 {
		return nil
	}
	failed, err := b.waitConditions(ctx, ns, deps)
	if failed != nil {
		return fmt.Errorf("dependency failed to start: %w", failed)
	}
	if err != nil {
		return fmt.Errorf("service %s: waiting for its dependencies: %w", service, err)
	}
	return nil
}

// conditionReady is up --wait's condition: running, and healthy when the
// container has a healthcheck.
const conditionReady = "berth:ready"

// waitServices is up --wait: every replica of the services runs, and is
// healthy when it has a healthcheck; a replica that exited or is unhealthy
// fails it.
func (b *Backend) waitServices(ctx context.Context, ns string, services []string) error {
	var deps []dependency
	for _, s := range services {
		deps = append(deps, dependency{service: s, condition: conditionReady})
	}
	failed, err := b.waitConditions(ctx, ns, deps)
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("waiting for the services to be ready: %w", err)
	}
	return nil
}

// waitConditions waits until every one of deps meets its condition:
// failed is a dependency's failure, err the end of ctx.
func (b *Backend) waitConditions(ctx context.Context, ns string, deps []dependency) (failed, err error) {
	err = b.waitUntil(ctx, func() bool {
		for _, d := range deps {
			ok, err := b.dependencyMet(ctx, ns, d)
			if err != nil {
				failed = err
				return true
			}
			if !ok {
				return false
			}
		}
		return true
	})
	return failed, err
}

// dependencyMet says whether one dependency meets its condition now.
func (b *Backend) dependencyMet(ctx context.Context, ns string, d dependency) (bool, error) {
	ss, err := b.c.AppsV1().StatefulSets(ns).Get(ctx, d.service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fromAPI(err)
	}
	if d.condition == compose.ConditionCompleted {
		return b.completed(ns, d.service)
	}
	want := wantReplicas(ss)
	if want == 0 {
		return true, nil
	}
	pods, err := b.ownedPods()
	if err != nil {
		return false, err
	}
	byOrdinal := map[int]*corev1.Pod{}
	for _, p := range pods {
		if p.Namespace == ns && isReplica(p) && p.Labels[compose.LabelService] == d.service {
			byOrdinal[ordinal(p)] = p
		}
	}
	for n := 1; n <= want; n++ {
		p, ok := byOrdinal[n]
		if !ok {
			return false, nil
		}
		if ok, err := b.replicaMet(p, d.condition); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// replicaMet is compose's test of one dependency container, on its pod.
func (b *Backend) replicaMet(p *corev1.Pod, condition string) (bool, error) {
	st := podState(p, b.now())
	switch st.status {
	case container.StateExited:
		return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s exited (%d)", name(p), st.exitCode))
	case container.StateRunning:
	default:
		return false, nil
	}
	if condition != compose.ConditionHealthy && condition != conditionReady {
		return true, nil
	}
	switch {
	case !hasProbe(p) && condition == conditionReady:
		return true, nil
	case !hasProbe(p):
		return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s has no healthcheck configured", name(p)))
	case st.health == container.Unhealthy:
		return false, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is unhealthy", name(p)))
	}
	return st.health == container.Healthy, nil
}

func wantReplicas(ss *appsv1.StatefulSet) int {
	if ss.Spec.Replicas == nil {
		return 1
	}
	return int(*ss.Spec.Replicas)
}

// applyStatefulSets applies a project's StatefulSets (berth compose up),
// each once the ones it depends on are applied and meet their conditions;
// services that do not depend on each other do not wait for each other, as
// compose starts them. The first failure stops the rest. The actions are
// in the order of sets (dependency order).
func (b *Backend) applyStatefulSets(ctx context.Context, sets []*appsv1.StatefulSet, oneShots map[string][]*corev1.Pod) ([]compose.Action, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	applied := map[string]chan struct{}{}
	for _, ss := range sets {
		applied[ss.Name] = make(chan struct{})
	}
	done := make([]bool, len(sets))
	var wg sync.WaitGroup
	for i, ss := range sets {
		wg.Go(func() {
			deps := dependencies(ss.Labels, ss.Annotations)
			for _, d := range deps {
				ch, ok := applied[d.service]
				if !ok {
					continue // not in this project (an optional dependency left out)
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
			if err := b.waitDependencies(ctx, ss.Namespace, ss.Name, deps); err != nil {
				cancel(err)
				return
			}
			if err := b.applyStatefulSet(ctx, ss); err != nil {
				cancel(err)
				return
			}
			for _, p := range oneShots[ss.Name] {
				if err := b.applyOneShot(ctx, p); err != nil {
					cancel(err)
					return
				}
			}
			done[i] = true
			close(applied[ss.Name])
		})
	}
	wg.Wait()
	var acts []compose.Action
	for i, ss := range sets {
		if done[i] {
			acts = append(acts, compose.Action{Kind: "StatefulSet", Name: ss.Name, Action: "Applied"})
		}
	}
	if ctx.Err() != nil {
		return acts, context.Cause(ctx)
	}
	return acts, nil
}
