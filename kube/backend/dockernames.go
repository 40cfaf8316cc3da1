package backend

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/berthd/berth/runtime"
)

// What Docker calls a compose replica's networks and volumes, kept on the
// StatefulSet's pod template by the creates: compose's next `up` wants
// each container on the networks and with the volumes of its service, by
// ID and name (else it recreates it, which this backend refuses).
const (
	// annotationNetworks: the Docker names of the service's networks,
	// comma-separated (all of them are its namespace).
	annotationNetworks = "berth/networks"
	// annotationVolumes: claim=Docker volume name, comma-separated.
	annotationVolumes = "berth/volumes"
	// annotationPublished: <port>/<proto>=<published port>, comma-separated:
	// the ports of the service's <svc>-published Service.
	annotationPublished = "berth/published"
)

// recordDockerNames puts the create's network and volume names on the
// StatefulSet's pod template.
func recordDockerNames(ss *appsv1.StatefulSet, req runtime.CreateRequest) {
	t := &ss.Spec.Template
	var nets []string
	if req.NetworkingConfig != nil {
		nets = slices.Sorted(maps.Keys(req.NetworkingConfig.EndpointsConfig))
	}
	if mode := string(req.HostConfig.NetworkMode); len(nets) == 0 && mode != "" && mode != "default" && mode != "bridge" {
		nets = []string{mode}
	}
	claimOf := map[string]string{} // pod volume -> claim
	for _, v := range t.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claimOf[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	var vols []string
	named := func(source, target string) {
		for _, c := range t.Spec.Containers {
			for _, vm := range c.VolumeMounts {
				if vm.MountPath == target && claimOf[vm.Name] != "" {
					vols = append(vols, claimOf[vm.Name]+"="+source)
				}
			}
		}
	}
	for _, m := range req.HostConfig.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			named(m.Source, m.Target)
		}
	}
	for _, b := range req.HostConfig.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 && !strings.HasPrefix(parts[0], "/") {
			named(parts[0], parts[1])
		}
	}
	var pub []string
	for port, bindings := range req.HostConfig.PortBindings {
		for _, b := range bindings {
			hp := b.HostPort
			if hp == "" || strings.HasPrefix(hp, "0") {
				hp = strconv.Itoa(int(port.Num())) // kube.Translate publishes an ephemeral port on its target
			}
			pub = append(pub, port.String()+"="+hp)
		}
	}
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	if len(pub) > 0 {
		slices.Sort(pub)
		t.Annotations[annotationPublished] = strings.Join(slices.Compact(pub), ",")
	}
	if len(nets) > 0 {
		t.Annotations[annotationNetworks] = strings.Join(nets, ",")
	}
	if len(vols) > 0 {
		slices.Sort(vols)
		t.Annotations[annotationVolumes] = strings.Join(vols, ",")
	}
}

// dockerNetworks are a pod's networks as Docker shows them: each recorded
// network name, with the ID its network has (networks.go) and the pod's
// IP once it has one (a pod has one address on the cluster network, which
// every network of its project shares).
func dockerNetworks(p *corev1.Pod) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	ip, _ := netip.ParseAddr(p.Status.PodIP)
	for n := range strings.SplitSeq(p.Annotations[annotationNetworks], ",") {
		if n != "" {
			out[n] = &network.EndpointSettings{NetworkID: networkID(p.Namespace, n), EndpointID: containerID(p), IPAddress: ip}
		}
	}
	return out
}

// dockerPorts are a pod's container ports as Docker lists them, with the
// port its published Service answers on (on the load balancer: no IP).
func dockerPorts(p *corev1.Pod) []container.PortSummary {
	pub := map[string]uint16{}
	for kv := range strings.SplitSeq(p.Annotations[annotationPublished], ",") {
		if port, hp, ok := strings.Cut(kv, "="); ok {
			if n, err := strconv.ParseUint(hp, 10, 16); err == nil {
				pub[port] = uint16(n)
			}
		}
	}
	var out []container.PortSummary
	for _, cp := range mainContainer(p).Ports {
		proto := strings.ToLower(string(cp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, container.PortSummary{PrivatePort: uint16(cp.ContainerPort), PublicPort: pub[strconv.Itoa(int(cp.ContainerPort))+"/"+proto], Type: proto})
	}
	return out
}

// dockerMounts are a pod's named-volume mounts as Docker shows them.
func dockerMounts(p *corev1.Pod) []container.MountPoint {
	names := map[string]string{} // claim -> Docker name
	for kv := range strings.SplitSeq(p.Annotations[annotationVolumes], ",") {
		if claim, name, ok := strings.Cut(kv, "="); ok {
			names[claim] = name
		}
	}
	claimOf := map[string]string{}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claimOf[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	var out []container.MountPoint
	for _, vm := range mainContainer(p).VolumeMounts {
		claim := claimOf[vm.Name]
		if claim == "" {
			continue
		}
		name := names[claim]
		if name == "" {
			name = claim
		}
		out = append(out, container.MountPoint{Type: mount.TypeVolume, Name: name, Source: p.Namespace + "/" + claim, Destination: vm.MountPath, Driver: volumeDriver, RW: !vm.ReadOnly})
	}
	return out
}
