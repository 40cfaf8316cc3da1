package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/kube/backend/backendtest"
	"github.com/berthd/berth/runtime"
)

// runController plays the StatefulSet controller and the kubelet
// (backendtest.RunController).
func runController(t *testing.T, cs *fake.Clientset) {
	t.Helper()
	backendtest.RunController(t, cs, t0)
}

// composeCreate is a create compose v2 sends (testdata/create/<file>),
// renumbered as replica n.
func composeCreate(t *testing.T, file string, n int) runtime.CreateRequest {
	t.Helper()
	data, err := os.ReadFile("../testdata/create/" + file)
	assert.NilError(t, err)
	var body struct {
		Name string
		container.Config
		HostConfig       *container.HostConfig
		NetworkingConfig *network.NetworkingConfig
	}
	assert.NilError(t, json.Unmarshal(data, &body))
	svc := body.Labels["com.docker.compose.service"]
	body.Labels["com.docker.compose.container-number"] = strconv.Itoa(n)
	name := fmt.Sprintf("shop-%s-%d", svc, n)
	for _, ep := range body.NetworkingConfig.EndpointsConfig {
		ep.Aliases[0] = name
	}
	return runtime.CreateRequest{Name: name, Config: &body.Config, HostConfig: body.HostConfig, NetworkingConfig: body.NetworkingConfig}
}

func replicasOf(t *testing.T, cs *fake.Clientset, ns, name string) int {
	t.Helper()
	ss, err := cs.AppsV1().StatefulSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	assert.NilError(t, err)
	return int(*ss.Spec.Replicas)
}
