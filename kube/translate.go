package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthd/berth/compose"
)

// Options are the backend's settings the translation depends on.
type Options struct {
	// NamespacePrefix is put before the project name to make the namespace
	// (berthd --kube-namespace-prefix), so that several berths or other
	// tenants share a cluster.
	NamespacePrefix string
	// DefaultVolumeSize is the storage request of a PVC whose volume does
	// not say (Docker volumes have no size); "" means 1Gi.
	DefaultVolumeSize string
}

// Manifests are a project's objects, each list in a fixed order.
type Manifests struct {
	Namespace *corev1.Namespace
	// PVCs are the project's named volumes, one claim each.
	PVCs []*corev1.PersistentVolumeClaim
	// Services are the headless Service of each compose service, then its
	// alias Services, then its published-ports Service.
	Services []*corev1.Service
	// StatefulSets are in dependency order (what a service depends on first,
	// ties by name): the order the applier creates them in.
	StatefulSets []*appsv1.StatefulSet
	// OneShots are the replicas of the one-shot services (kube.OneShot:
	// others depend on them by completion), whose StatefulSets are at 0
	// replicas: Pods that the kubelet does not restart (OneShotPod), in the
	// order of StatefulSets.
	OneShots []*corev1.Pod
}

// Objects are all the manifests in the order to apply them.
func (m *Manifests) Objects() []runtime.Object {
	out := []runtime.Object{m.Namespace}
	for _, o := range m.PVCs {
		out = append(out, o)
	}
	for _, o := range m.Services {
		out = append(out, o)
	}
	for _, o := range m.StatefulSets {
		out = append(out, o)
	}
	for _, o := range m.OneShots {
		out = append(out, o)
	}
	return out
}

// Translate maps a loaded project (compose.Load's, with the compose labels)
// to Kubernetes objects. Errors wrap ErrInvalidArgument for names Kubernetes
// cannot take and ErrNotImplemented for options the backend does not map.
func Translate(p *types.Project, o Options) (*Manifests, error) {
	t := &translator{p: p, o: o, names: map[string]string{}}
	if o.DefaultVolumeSize == "" {
		t.o.DefaultVolumeSize = "1Gi"
	}
	ns := o.NamespacePrefix + p.Name
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("project name %q cannot be a Kubernetes namespace: %s", ns, strings.Join(errs, "; ")))
	}
	t.ns = ns
	if err := refuseProject(p); err != nil {
		return nil, err
	}
	m := &Manifests{}
	var err error
	if m.Namespace, err = t.namespace(); err != nil {
		return nil, err
	}
	if m.PVCs, err = t.claims(); err != nil {
		return nil, err
	}
	order, err := dependencyOrder(p)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		svcs, err := t.services(p.Services[name])
		if err != nil {
			return nil, err
		}
		m.Services = append(m.Services, svcs...)
	}
	for _, name := range order {
		ss, err := t.statefulSet(p.Services[name])
		if err != nil {
			return nil, err
		}
		m.StatefulSets = append(m.StatefulSets, ss)
	}
	for _, ss := range m.StatefulSets {
		if !OneShot(ss.Name, m.StatefulSets) {
			continue
		}
		for n := 1; n <= int(*ss.Spec.Replicas); n++ {
			m.OneShots = append(m.OneShots, OneShotPod(ss, n, time.Time{}))
		}
		ss.Spec.Replicas = new(int32(0))
	}
	return m, nil
}

type translator struct {
	p  *types.Project
	o  Options
	ns string
	// names are the Service names given so far and who took them, to refuse
	// a second object of the same name instead of letting apply merge them.
	names map[string]string
}

func (t *translator) claim(name, owner string) error {
	if prev, ok := t.names[name]; ok {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s and %s both need the Kubernetes Service name %q", prev, owner, name))
	}
	t.names[name] = owner
	return nil
}

func (t *translator) namespace() (*corev1.Namespace, error) {
	// the project-level compose labels (working dir, files) of any service:
	// compose.Load puts the same ones on all
	docker := map[string]string{compose.LabelProject: t.p.Name}
	for _, name := range slices.Sorted(maps.Keys(t.p.Services)) {
		for _, k := range []string{compose.LabelWorkingDir, compose.LabelConfigFiles, compose.LabelEnvironmentFile} {
			if v, ok := t.p.Services[name].CustomLabels[k]; ok {
				docker[k] = v
			}
		}
		break
	}
	labels, annotations, err := splitLabels(docker)
	if err != nil {
		return nil, err
	}
	labels[LabelManagedBy] = ManagedBy
	ns := &corev1.Namespace{}
	ns.APIVersion, ns.Kind = "v1", "Namespace"
	ns.Name = t.ns
	ns.Labels, ns.Annotations = labels, nilIfEmpty(annotations)
	return ns, nil
}

// projectLabels are on every object of the project; the selector of a
// service's pods adds the service label.
func (t *translator) projectLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, compose.LabelProject: t.p.Name}
}

func (t *translator) selector(service string) map[string]string {
	return merged(t.projectLabels(), map[string]string{compose.LabelService: service})
}

// refuseProject rejects the top-level elements the backend does not map.
func refuseProject(p *types.Project) error {
	if len(p.Configs) > 0 {
		return notImplemented("configs", "not mapped to ConfigMaps yet")
	}
	if len(p.Secrets) > 0 {
		return notImplemented("secrets", "not mapped to Kubernetes Secrets yet")
	}
	return nil
}

func notImplemented(what, why string) error {
	return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s: %s on the Kubernetes backend", what, why))
}

// dependencyOrder sorts the services so that each comes after what it
// depends on; ties go by name, so the order is the same every time.
func dependencyOrder(p *types.Project) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return errdefs.ErrInvalidArgument.WithMessage("depends_on cycle: " + strings.Join(append(path, name), " -> "))
		}
		state[name] = 1
		s, ok := p.Services[name]
		if !ok {
			// compose-go has checked depends_on; a disabled dependency is not
			// part of this project
			state[name] = 2
			return nil
		}
		for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
			if err := visit(dep, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
