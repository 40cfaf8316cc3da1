package compose

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestView(t *testing.T) {
	withHealth := summary("db1", "named-db", labels("shop", "db", 1), container.StateRunning)
	withHealth.Health = &container.HealthSummary{Status: container.Healthy}
	noHealth := summary("w2", "shop-worker-2", labels("shop", "worker", 2), container.StateRunning)
	noHealth.Health = &container.HealthSummary{Status: container.NoHealthcheck}
	withPorts := summary("web1", "blog-web-1", labels("blog", "web", 1), container.StateExited)
	withPorts.Ports = []container.PortSummary{{PrivatePort: 80, PublicPort: 8080, Type: "tcp"}}
	withPorts.Labels[LabelWorkingDir] = "/srv/blog"
	withPorts.Labels[LabelConfigFiles] = "/srv/blog/compose.yaml,/srv/blog/override.yaml"

	tests := []struct {
		name string
		in   []container.Summary
		want []Deployment
	}{
		{name: "empty", in: nil, want: []Deployment{}},
		{
			name: "plain containers are not deployments",
			in:   []container.Summary{summary("x", "x", map[string]string{"a": "b"}, container.StateRunning), summary("y", "y", map[string]string{LabelProject: "p"}, container.StateRunning)},
			want: []Deployment{},
		},
		{
			name: "projects, services and replicas come out sorted",
			in: []container.Summary{
				noHealth,
				summary("w1", "shop-worker-1", labels("shop", "worker", 1), container.StateRunning),
				withPorts,
				withHealth,
				summary("run1", "shop-worker-run-abc", labels("shop", "worker", 0), container.StateRunning),
			},
			want: []Deployment{
				{Project: "blog", WorkingDir: "/srv/blog", ConfigFiles: []string{"/srv/blog/compose.yaml", "/srv/blog/override.yaml"}, Services: []Service{
					{Name: "web", Replicas: []Replica{{Number: 1, ContainerID: "web1", Name: "blog-web-1", State: container.StateExited, Image: "busybox:latest", Ports: withPorts.Ports}}},
				}},
				{Project: "shop", Services: []Service{
					{Name: "db", Replicas: []Replica{{Number: 1, ContainerID: "db1", Name: "named-db", State: container.StateRunning, Health: container.Healthy, Image: "busybox:latest"}}},
					{Name: "worker",
						Replicas: []Replica{
							{Number: 1, ContainerID: "w1", Name: "shop-worker-1", State: container.StateRunning, Image: "busybox:latest"},
							{Number: 2, ContainerID: "w2", Name: "shop-worker-2", State: container.StateRunning, Image: "busybox:latest"},
						},
						OneOffs: []Replica{{ContainerID: "run1", Name: "shop-worker-run-abc", State: container.StateRunning, Image: "busybox:latest"}},
					},
				}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, View(tc.in), tc.want, cmpopts.EquateComparable(netip.Addr{}))
		})
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want ContainerKey
		ok   bool
	}{
		{in: nil},
		{in: map[string]string{LabelProject: "p"}},
		{in: labels("p", "s", 3), want: ContainerKey{Project: "p", Service: "s", Number: 3}, ok: true},
		{in: labels("p", "s", 0), want: ContainerKey{Project: "p", Service: "s", OneOff: true}, ok: true},
		{in: map[string]string{LabelProject: "p", LabelService: "s", LabelContainerNumber: "x"}, want: ContainerKey{Project: "p", Service: "s"}, ok: true},
	}
	for _, tc := range tests {
		k, ok := KeyOf(tc.in)
		assert.Check(t, is.Equal(ok, tc.ok))
		assert.Check(t, is.DeepEqual(k, tc.want))
	}
}
