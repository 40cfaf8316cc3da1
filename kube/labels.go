package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/errdefs"

	"k8s.io/apimachinery/pkg/util/validation"
)

// What berth puts on every object it owns, so that its informers list only
// its own objects and `down` deletes only what `up` made.
// DefaultStopSeconds is Docker's stop timeout, a container's
// terminationGracePeriodSeconds unless its stop_grace_period or
// --stop-timeout says otherwise (Kubernetes' own default is 30).
const DefaultStopSeconds = 10

const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "berth"

	// depends_on is compose's own com.docker.compose.depends_on
	// ("svc:condition:restart,...", an annotation: its value breaks the
	// label rules). The applier creates a service's StatefulSet once what it
	// depends on is ready (docs/kubernetes.md).

	// AnnotationRestart is the compose restart policy; a StatefulSet's pods
	// restart always, the backend reads this to tell `no` and `on-failure`.
	AnnotationRestart = "berth/restart"
	// AnnotationContainerName is container_name: the Docker name the backend
	// shows for the pod (pods keep the StatefulSet's names).
	AnnotationContainerName = "berth/container-name"
	// AnnotationAliasOf is on alias Services: the compose service they name.
	AnnotationAliasOf = "berth/alias-of"
	// AnnotationReplicaOf is on the pod of a one-shot replica (OneShotPod):
	// the StatefulSet pod name it stands for (<service>-<n>), which gives it
	// its container id.
	AnnotationReplicaOf = "berth/replica-of"
	// AnnotationStartPeriod is healthcheck.start_period: readiness has no
	// grace period to express it and needs none (see readinessProbe).
	AnnotationStartPeriod = "berth/healthcheck-start-period"
)

// splitLabels sorts Docker labels into Kubernetes labels and annotations:
// a label whose key or value breaks Kubernetes' label rules (a path as value,
// a value longer than 63 bytes) is kept whole as an annotation instead. A
// key that cannot even be an annotation's ("my label", a name part over 63
// bytes) is refused: dropping it would lose it, renaming it would make
// `docker inspect` show another label.
func splitLabels(docker map[string]string) (labels, annotations map[string]string, err error) {
	labels, annotations = map[string]string{}, map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(docker)) {
		v := docker[k]
		switch {
		case len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0:
			labels[k] = v
		case len(validation.IsQualifiedName(strings.ToLower(k))) == 0:
			annotations[k] = v
		default:
			return nil, nil, badKey(k)
		}
	}
	return labels, annotations, nil
}

// checkAnnotations refuses compose annotations Kubernetes cannot take.
func checkAnnotations(m map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if len(validation.IsQualifiedName(strings.ToLower(k))) > 0 {
			return badKey(k)
		}
	}
	return nil
}

func badKey(k string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("label %q: %s; the Kubernetes backend needs label keys that are Kubernetes label or annotation keys", k, strings.Join(validation.IsQualifiedName(strings.ToLower(k)), "; ")))
}

func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
