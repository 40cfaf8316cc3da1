package backend

import (
	"net/netip"
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A replica shows the pod's IP on each of its project's networks, as
// `docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'`
// reads it; none while the pod has no IP yet.
func TestDockerNetworksCarryThePodIP(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "shop",
		Annotations: map[string]string{annotationNetworks: "shop_default,shop_back"}}}
	nets := dockerNetworks(p)
	assert.Equal(t, len(nets), 2)
	assert.Assert(t, !nets["shop_default"].IPAddress.IsValid(), "no IP before the pod has one")

	p.Status.PodIP = "10.226.0.7"
	nets = dockerNetworks(p)
	for _, n := range []string{"shop_default", "shop_back"} {
		assert.Equal(t, nets[n].IPAddress, netip.MustParseAddr("10.226.0.7"), n)
		assert.Equal(t, nets[n].NetworkID, networkID("shop", n))
	}
}
