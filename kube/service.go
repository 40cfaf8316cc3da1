package kube

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PublishedSuffix names the Service of a service's published ports:
// <service>-published.
const PublishedSuffix = "-published"

// services are a compose service's Services: the headless one named after
// it (stable per-replica DNS names, <n>.<service>), one per network alias,
// and one LoadBalancer for its published ports.
func (t *translator) services(s types.ServiceConfig) ([]*corev1.Service, error) {
	if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %q cannot be a Kubernetes Service name: %s", s.Name, strings.Join(errs, "; ")))
	}
	ports, err := servicePorts(s)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Service
	if err := t.claim(s.Name, "service "+s.Name); err != nil {
		return nil, err
	}
	out = append(out, t.headless(s.Name, s.Name, ports))
	for _, alias := range aliases(s) {
		if alias == s.Name {
			continue
		}
		if errs := validation.IsDNS1035Label(alias); len(errs) > 0 {
			return nil, notImplemented(fmt.Sprintf("service %s: network alias %q", s.Name, alias), "an alias becomes a Service and must be a DNS label ("+strings.Join(errs, "; ")+")")
		}
		if err := t.claim(alias, "the alias of service "+s.Name); err != nil {
			return nil, err
		}
		svc := t.headless(alias, s.Name, ports)
		svc.Annotations = map[string]string{AnnotationAliasOf: s.Name}
		out = append(out, svc)
	}
	pub, err := t.published(s)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		out = append(out, pub)
	}
	return out, nil
}

// headless is a Service with no cluster IP: its DNS name answers the pods'
// addresses, as Docker's DNS answers the containers' for a service name.
// Not-ready pods are published too: Docker resolves a container that is not
// healthy yet, and readiness is only what depends_on waits for.
func (t *translator) headless(name, service string, ports []corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{}
	svc.APIVersion, svc.Kind = "v1", "Service"
	svc.Name, svc.Namespace = name, t.ns
	svc.Labels = t.selector(service)
	svc.Spec = corev1.ServiceSpec{
		ClusterIP:                corev1.ClusterIPNone,
		Selector:                 t.selector(service),
		Ports:                    ports,
		PublishNotReadyAddresses: true,
	}
	return svc
}

// aliases are the service's network aliases over all its networks, sorted
// and once each: a namespace is one flat network (docs/kubernetes.md).
func aliases(s types.ServiceConfig) []string {
	var out []string
	for _, n := range s.Networks {
		if n != nil {
			out = append(out, n.Aliases...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// servicePorts are the container ports the service listens on (ports'
// targets and expose), for the headless Service: named so that a
// Service can have several, and SRV records name them.
func servicePorts(s types.ServiceConfig) ([]corev1.ServicePort, error) {
	seen := map[string]bool{}
	var out []corev1.ServicePort
	add := func(port int, proto string) error {
		p, err := protocol(proto)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		name := strings.ToLower(string(p)) + "-" + strconv.Itoa(port)
		if seen[name] {
			return nil
		}
		seen[name] = true
		out = append(out, corev1.ServicePort{Name: name, Protocol: p, Port: int32(port), TargetPort: intstr.FromInt32(int32(port))})
		return nil
	}
	for _, sp := range s.Ports {
		if err := add(int(sp.Target), sp.Protocol); err != nil {
			return nil, err
		}
	}
	for _, e := range s.Expose {
		port, proto, _ := strings.Cut(e, "/")
		if strings.Contains(port, "-") {
			return nil, notImplemented(fmt.Sprintf("service %s: expose %q", s.Name, e), "port ranges are not mapped")
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: expose %q: not a port", s.Name, e))
		}
		if err := add(n, proto); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b corev1.ServicePort) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out, nil
}

func protocol(p string) (corev1.Protocol, error) {
	switch strings.ToLower(p) {
	case "", "tcp":
		return corev1.ProtocolTCP, nil
	case "udp":
		return corev1.ProtocolUDP, nil
	case "sctp":
		return corev1.ProtocolSCTP, nil
	}
	return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("protocol %q: not tcp, udp or sctp", p))
}

// published is the LoadBalancer Service of the service's published ports:
// its port is the published port (a NodePort is allocated too, so a cluster
// without a load balancer still reaches it). A port published on an
// ephemeral host port (no published) is published on its target port.
func (t *translator) published(s types.ServiceConfig) (*corev1.Service, error) {
	var ports []corev1.ServicePort
	seen := map[string]bool{}
	for _, sp := range s.Ports {
		if sp.HostIP != "" && sp.HostIP != "0.0.0.0" && sp.HostIP != "::" {
			return nil, notImplemented(fmt.Sprintf("service %s: port %d published on host_ip %s", s.Name, sp.Target, sp.HostIP), "a cluster has no host addresses to bind")
		}
		if sp.Mode == "host" {
			return nil, notImplemented(fmt.Sprintf("service %s: port %d with mode host", s.Name, sp.Target), "hostPort is not mapped")
		}
		p, err := protocol(sp.Protocol)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		port := int(sp.Target)
		if sp.Published != "" {
			if strings.Contains(sp.Published, "-") {
				return nil, notImplemented(fmt.Sprintf("service %s: published port range %s", s.Name, sp.Published), "port ranges are not mapped")
			}
			if port, err = strconv.Atoi(sp.Published); err != nil || port < 1 || port > 65535 {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: published port %q: not a port", s.Name, sp.Published))
			}
		}
		name := strings.ToLower(string(p)) + "-" + strconv.Itoa(port)
		if seen[name] {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: port %d/%s is published twice", s.Name, port, strings.ToLower(string(p))))
		}
		seen[name] = true
		ports = append(ports, corev1.ServicePort{Name: name, Protocol: p, Port: int32(port), TargetPort: intstr.FromInt32(int32(sp.Target))})
	}
	if len(ports) == 0 {
		return nil, nil
	}
	slices.SortFunc(ports, func(a, b corev1.ServicePort) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	name := s.Name + PublishedSuffix
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: the Service of its published ports, %q, is not a valid name: %s", s.Name, name, strings.Join(errs, "; ")))
	}
	if err := t.claim(name, "the published ports of service "+s.Name); err != nil {
		return nil, err
	}
	svc := &corev1.Service{}
	svc.APIVersion, svc.Kind = "v1", "Service"
	svc.Name, svc.Namespace = name, t.ns
	svc.Labels = t.selector(s.Name)
	svc.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: t.selector(s.Name), Ports: ports}
	return svc, nil
}
