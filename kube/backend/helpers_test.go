package backend

import (
	"os"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/kube"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	assert.NilError(t, os.WriteFile(path, []byte(content), 0o644))
}

// replica is a StatefulSet pod of a compose service as the controller makes
// it, in the state st.
func replica(project, service, index string, created time.Time, st corev1.ContainerState, ready bool) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: project, Name: service + "-" + index, CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{
				kube.LabelManagedBy: kube.ManagedBy, compose.LabelProject: project, compose.LabelService: service,
				compose.LabelOneoff: "False", podIndexLabel: index, "controller-revision-hash": "abc",
			},
			Annotations: map[string]string{compose.LabelWorkingDir: "/src/" + project},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: service, Image: service + ":1", Args: []string{"run", "$$HOME"}, Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}}},
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: service, State: st, Ready: ready}}
	return p
}

func running(since time.Time) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(since)}}
}

func exited(code int32, at time.Time) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(at)}}
}

func mustFilters(t *testing.T, s string) filters.Args {
	t.Helper()
	f, err := filters.Parse(s)
	assert.NilError(t, err)
	return f
}
