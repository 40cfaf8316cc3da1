package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/kube"
)

// A compose project's networks are its namespace: pods in one namespace
// reach each other by Service name, which is what a compose network gives
// (docs/kubernetes.md). `docker network create` of compose's
// <project>_<key> ensures the namespace and records the network on it as
// the annotation network.berth/<key> (its Docker name, labels, creation
// time), so that list and inspect answer what compose created; rm drops
// the annotation, and the namespace too once nothing of berth's is left in
// it. A network outside a compose project is refused.

// networkAnnotationPrefix prefixes the annotations of a namespace's
// networks: network.berth/<compose network key>.
const networkAnnotationPrefix = "network.berth/"

// networkDriver is the Driver the networks show: they are namespaces.
const networkDriver = "kubernetes"

// netRecord is a network's annotation value.
type netRecord struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

// Networks serves the network endpoints (engine/router/networks) from
// namespaces; connect and disconnect answer 501.
type Networks struct{ b *Backend }

// Networks returns the network side of the backend.
func (b *Backend) Networks() *Networks { return &Networks{b: b} }

// networkID is a network's ID: from its namespace and Docker name, which
// a pod's record of its networks has too (dockernames.go).
func networkID(ns, name string) string {
	sum := sha256.Sum256([]byte("network:" + ns + "/" + name))
	return hex.EncodeToString(sum[:])
}

// CreateNetwork ensures the project's namespace and records the network on
// it. What a namespace cannot express is refused by name.
func (n *Networks) CreateNetwork(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	project, key := req.Labels[compose.LabelProject], req.Labels[compose.LabelNetwork]
	if project == "" || key == "" {
		return network.CreateResponse{}, notSupported(fmt.Sprintf("network %s: a network outside a compose project (without the labels %s and %s)", req.Name, compose.LabelProject, compose.LabelNetwork), "a project's networks are its namespace")
	}
	if err := refuseNetworkOptions(req); err != nil {
		return network.CreateResponse{}, err
	}
	ns, err := n.b.projectNamespace(project)
	if err != nil {
		return network.CreateResponse{}, err
	}
	ann := networkAnnotationPrefix + key
	if errs := validation.IsQualifiedName(ann); len(errs) > 0 {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %q cannot be recorded on namespace %s: %s", key, ns, strings.Join(errs, "; ")))
	}
	if _, err := n.find(ctx, req.Name); err == nil {
		return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
	}
	rec, err := json.Marshal(netRecord{Name: req.Name, Labels: req.Labels, Created: n.b.now().UTC()})
	if err != nil {
		return network.CreateResponse{}, err
	}
	cur, err := n.b.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels:      map[string]string{kube.LabelManagedBy: kube.ManagedBy, compose.LabelProject: project},
			Annotations: map[string]string{ann: string(rec)}}}
		_, err = n.b.c.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	case err != nil:
	case cur.Labels[kube.LabelManagedBy] != kube.ManagedBy:
		return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network %s: namespace %s exists and is not berth's", req.Name, ns))
	default:
		// a merge patch of the one annotation: the namespace's other fields
		// are berth compose up's (server-side apply), untouched
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{ann: string(rec)}}})
		_, err = n.b.c.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return network.CreateResponse{}, fmt.Errorf("network %s: namespace %s: %w", req.Name, ns, fromAPI(err))
	}
	return network.CreateResponse{ID: networkID(ns, req.Name)}, nil
}

// refuseNetworkOptions names what a namespace cannot be: another driver,
// subnets and addresses (the cluster's), internal (no NetworkPolicy yet),
// IPv6 only or dual, driver options, swarm's options.
func refuseNetworkOptions(req network.CreateRequest) error {
	refuse := func(what, why string) error {
		return notSupported(fmt.Sprintf("network %s: %s", req.Name, what), why)
	}
	switch {
	case req.Driver != "" && req.Driver != "bridge":
		return refuse("driver "+req.Driver, "a project network is its namespace")
	case req.IPAM != nil && (len(req.IPAM.Config) > 0 || req.IPAM.Driver != "" && req.IPAM.Driver != "default" || len(req.IPAM.Options) > 0):
		return refuse("ipam", "pod addresses are the cluster's")
	case req.Internal:
		return refuse("internal", "no NetworkPolicy is made yet")
	case req.EnableIPv6 != nil && *req.EnableIPv6, req.EnableIPv4 != nil && !*req.EnableIPv4:
		return refuse("enable_ipv6/enable_ipv4", "the cluster's address families are its own")
	case len(req.Options) > 0:
		return refuse("driver_opts", "a project network is its namespace")
	case req.Attachable, req.Ingress, req.ConfigOnly, req.ConfigFrom != nil, req.Scope != "" && req.Scope != "local":
		return refuse("swarm options (attachable, ingress, config networks, scope)", "there is no swarm")
	}
	return nil
}

// projectNamespace is the namespace of a compose project, refused (400)
// when it cannot be one.
func (b *Backend) projectNamespace(project string) (string, error) {
	ns := b.Namespace(project)
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("project name %q cannot be a Kubernetes namespace: %s", ns, strings.Join(errs, "; ")))
	}
	return ns, nil
}

// netOf is a recorded network.
type netOf struct {
	ns, key string
	rec     netRecord
}

// networks are the networks recorded on berth's namespaces.
func (n *Networks) networks(ctx context.Context) ([]netOf, error) {
	list, err := n.b.c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownedSelector})
	if err != nil {
		return nil, fromAPI(err)
	}
	var out []netOf
	for _, ns := range list.Items {
		for _, a := range slices.Sorted(maps.Keys(ns.Annotations)) {
			key, ok := strings.CutPrefix(a, networkAnnotationPrefix)
			if !ok {
				continue
			}
			var rec netRecord
			if err := json.Unmarshal([]byte(ns.Annotations[a]), &rec); err != nil {
				continue // not berth's record: not a network
			}
			out = append(out, netOf{ns: ns.Name, key: key, rec: rec})
		}
	}
	return out, nil
}

// find resolves a network by id, name or unique id prefix.
func (n *Networks) find(ctx context.Context, ref string) (netOf, error) {
	all, err := n.networks(ctx)
	if err != nil {
		return netOf{}, err
	}
	var byPrefix []netOf
	for _, x := range all {
		id := networkID(x.ns, x.rec.Name)
		if id == ref || x.rec.Name == ref {
			return x, nil
		}
		if strings.HasPrefix(id, ref) {
			byPrefix = append(byPrefix, x)
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	return netOf{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ref))
}

func (x netOf) summary() network.Summary {
	return network.Summary{Network: network.Network{
		Name: x.rec.Name, ID: networkID(x.ns, x.rec.Name), Created: x.rec.Created, Scope: "local", Driver: networkDriver,
		EnableIPv4: true, Labels: x.rec.Labels, Options: map[string]string{"namespace": x.ns},
	}}
}

// Networks lists the recorded networks; filters name, id, label, driver.
func (n *Networks) Networks(ctx context.Context, f filters.Args) ([]network.Summary, error) {
	if err := f.Validate("name", "id", "label", "driver", "scope", "type"); err != nil {
		return nil, err
	}
	all, err := n.networks(ctx)
	if err != nil {
		return nil, err
	}
	out := []network.Summary{}
	for _, x := range all {
		s := x.summary()
		if f.Match("name", s.Name) && f.FuzzyMatch("id", s.ID) && f.MatchKVList("label", s.Labels) &&
			f.ExactMatch("driver", s.Driver) && f.ExactMatch("scope", s.Scope) && f.ExactMatch("type", "custom") {
			out = append(out, s)
		}
	}
	return out, nil
}

// InspectNetwork answers a network with the containers of its namespace.
func (n *Networks) InspectNetwork(ctx context.Context, ref string) (network.Inspect, error) {
	x, err := n.find(ctx, ref)
	if err != nil {
		return network.Inspect{}, err
	}
	in := network.Inspect{Network: x.summary().Network, Containers: map[string]network.EndpointResource{}}
	for id, name := range n.b.containersIn(x.ns) {
		in.Containers[id] = network.EndpointResource{Name: name, EndpointID: id}
	}
	return in, nil
}

// containersIn are the containers (pods and berth's records) of a
// namespace, by id.
func (b *Backend) containersIn(ns string) map[string]string {
	out := map[string]string{}
	pods, _ := b.ownedPods()
	for _, p := range pods {
		if p.Namespace == ns {
			out[containerID(p)] = name(p)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, l := range b.local {
		if l.pod.Namespace == ns {
			out[id] = name(l.pod)
		}
	}
	return out
}

// RemoveNetwork drops the network's record; the namespace goes with its
// last network when nothing of berth's is left in it.
func (n *Networks) RemoveNetwork(ctx context.Context, ref string) error {
	x, err := n.find(ctx, ref)
	if err != nil {
		return err
	}
	if c := n.b.containersIn(x.ns); len(c) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("error while removing network: network %s id %s has active endpoints (%s)", x.rec.Name, networkID(x.ns, x.rec.Name), strings.Join(slices.Sorted(maps.Values(c)), ", ")))
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{networkAnnotationPrefix + x.key: nil}}})
	if _, err := n.b.c.CoreV1().Namespaces().Patch(ctx, x.ns, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("network %s: namespace %s: %w", x.rec.Name, x.ns, fromAPI(err))
	}
	return n.b.retireNamespace(ctx, x.ns)
}

// PruneNetworks is refused: a namespace is removed with its project.
func (n *Networks) PruneNetworks(ctx context.Context, f filters.Args) (network.PruneReport, error) {
	return network.PruneReport{}, notImplemented("network prune")
}

// ConnectContainer is refused: a pod is in its namespace's network only.
func (n *Networks) ConnectContainer(ctx context.Context, netRef, ctrRef string, cfg *network.EndpointSettings) error {
	return notImplemented("network connect (a pod is on its namespace's network only)")
}

// DisconnectContainer is refused, as connect.
func (n *Networks) DisconnectContainer(ctx context.Context, netRef, ctrRef string, force bool) error {
	return notImplemented("network disconnect (a pod is on its namespace's network only)")
}

// retireNamespace deletes a namespace berth made once it holds nothing of
// berth's: no network record, claim, StatefulSet, Service or container. A
// namespace that still holds a claim stays (compose keeps volumes).
func (b *Backend) retireNamespace(ctx context.Context, ns string) error {
	cur, err := b.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fromAPI(err)
	}
	if cur.Labels[kube.LabelManagedBy] != kube.ManagedBy {
		return nil
	}
	for a := range cur.Annotations {
		if strings.HasPrefix(a, networkAnnotationPrefix) {
			return nil
		}
	}
	if len(b.containersIn(ns)) > 0 {
		return nil
	}
	sel := metav1.ListOptions{LabelSelector: ownedSelector}
	claims, err := b.c.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
	if err != nil {
		return fromAPI(err)
	}
	sets, err := b.c.AppsV1().StatefulSets(ns).List(ctx, sel)
	if err != nil {
		return fromAPI(err)
	}
	svcs, err := b.c.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return fromAPI(err)
	}
	if len(claims.Items)+len(sets.Items)+len(svcs.Items) > 0 {
		return nil
	}
	if err := ignoreGone(b.c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})); err != nil {
		return fmt.Errorf("delete Namespace %s: %w", ns, fromAPI(err))
	}
	return nil
}
