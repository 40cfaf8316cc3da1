package backend

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
)

// A started container with a healthcheck (a pod with a readiness probe) is
// "starting" from its start, also while its pod is pending (scheduling,
// binding its claim): compose's wait for service_healthy fails on a
// started container without a health (found against a real control plane,
// where the pod is pending for a while; the fake's pods run at once).
func TestHealthStartingWhilePending(t *testing.T) {
	now := time.Now()
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "pg_isready"}}}}
	health := func(p corev1.Pod) container.HealthStatus {
		r := inspect(&p, now)
		if r.State.Health == nil {
			return ""
		}
		return r.State.Health.Status
	}
	pending := replica("shop", "db", "1", now, corev1.ContainerState{}, false)
	pending.Status.ContainerStatuses = nil
	pending.Status.Phase = corev1.PodPending
	pending.Spec.Containers[0].ReadinessProbe = probe
	assert.Equal(t, health(pending), container.Starting)

	waiting := replica("shop", "db", "1", now, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}, false)
	waiting.Status.Phase = corev1.PodPending
	waiting.Spec.Containers[0].ReadinessProbe = probe
	assert.Equal(t, health(waiting), container.Starting)

	ready := replica("shop", "db", "1", now, running(now), true)
	ready.Spec.Containers[0].ReadinessProbe = probe
	assert.Equal(t, health(ready), container.Healthy)

	// no healthcheck: no health, pending or not
	plain := replica("shop", "web", "1", now, corev1.ContainerState{}, false)
	plain.Status.ContainerStatuses = nil
	plain.Status.Phase = corev1.PodPending
	assert.Equal(t, health(plain), container.HealthStatus(""))
	// a created record (not started: no pod, no phase) has no health yet
	assert.Equal(t, health(*cleanCopy(&pending)), container.HealthStatus(""))
}
