package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "berth"

// Up deploys a compose project: kube.Translate's objects applied
// server-side, in Objects() order (namespace, claims, services,
// StatefulSets in dependency order), each StatefulSet once the services it
// depends on meet their depends_on conditions (waitDependencies). A
// translation error (a refused option) is returned before anything is
// applied, so nothing is created half-way; a dependency that fails stops
// the up there, as compose's does. Wait (up --wait) then waits until every
// replica runs, and is healthy when it has a healthcheck; Timeout bounds
// the waits.
func (b *Backend) Up(ctx context.Context, req compose.UpRequest) (*compose.UpResult, error) {
	if req.FromRecord {
		return nil, notImplemented("up from the deployment record (berth compose up -p without files)")
	}
	if req.RemoveOrphans {
		return nil, notImplemented("up --remove-orphans")
	}
	p, err := compose.Load(ctx, req.LoadOptions)
	if err != nil {
		return nil, err
	}
	m, err := kube.Translate(p, b.o)
	if err != nil {
		return nil, err
	}
	res := &compose.UpResult{Project: p.Name}
	var sets []*appsv1.StatefulSet
	oneShots := map[string][]*corev1.Pod{} // by service
	for _, o := range m.Objects() {
		switch o := o.(type) {
		case *appsv1.StatefulSet:
			sets = append(sets, o)
			continue
		case *corev1.Pod:
			oneShots[o.Labels[compose.LabelService]] = append(oneShots[o.Labels[compose.LabelService]], o)
			continue
		}
		kind, name, err := b.apply(ctx, o)
		if err != nil {
			return res, err
		}
		res.Actions = append(res.Actions, compose.Action{Kind: kind, Name: name, Action: "Applied"})
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	acts, err := b.applyStatefulSets(ctx, sets, oneShots)
	res.Actions = append(res.Actions, acts...)
	if err != nil || !req.Wait {
		return res, err
	}
	var services []string
	for _, ss := range sets {
		services = append(services, ss.Name)
	}
	if len(sets) == 0 {
		return res, nil
	}
	return res, b.waitServices(ctx, sets[0].Namespace, services)
}

// apply sends one object as a server-side apply patch (field manager berth,
// forcing conflicts: berth owns what it made).
func (b *Backend) apply(ctx context.Context, o k8sruntime.Object) (kind, name string, err error) {
	acc, err := meta.Accessor(o)
	if err != nil {
		return "", "", err
	}
	name, ns := acc.GetName(), acc.GetNamespace()
	if acc.GetLabels()[kube.LabelManagedBy] != kube.ManagedBy {
		// every object berth writes is labelled as its own: the informers
		// and down see only those
		return "", "", fmt.Errorf("kube backend: %s %s is not labelled %s", o.GetObjectKind().GroupVersionKind().Kind, name, ownedSelector)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return "", "", err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}
	switch o.(type) {
	case *corev1.Namespace:
		kind, err = "Namespace", ignoreObj(b.c.CoreV1().Namespaces().Patch(ctx, name, types.ApplyPatchType, data, opts))
	case *corev1.PersistentVolumeClaim:
		kind, err = "PersistentVolumeClaim", ignoreObj(b.c.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.ApplyPatchType, data, opts))
	case *corev1.Service:
		kind, err = "Service", ignoreObj(b.c.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, data, opts))
	case *appsv1.StatefulSet:
		kind, err = "StatefulSet", ignoreObj(b.c.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, data, opts))
	case *corev1.Pod:
		kind, err = "Pod", ignoreObj(b.c.CoreV1().Pods(ns).Patch(ctx, name, types.ApplyPatchType, data, opts))
	case *corev1.ConfigMap:
		kind, err = "ConfigMap", ignoreObj(b.c.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.ApplyPatchType, data, opts))
	default:
		return "", "", fmt.Errorf("kube backend: cannot apply a %T", o)
	}
	if err != nil {
		return kind, name, fmt.Errorf("apply %s %s/%s: %w", kind, ns, name, fromAPI(err))
	}
	return kind, name, nil
}

// Scale sets services' replicas (spec.replicas of their StatefulSets).
func (b *Backend) Scale(ctx context.Context, project string, req compose.ScaleRequest) (*compose.UpResult, error) {
	ns := b.Namespace(project)
	res := &compose.UpResult{Project: project}
	for svc, n := range req.Services {
		if n < 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid scale %d for service %s", n, svc))
		}
	}
	for _, svc := range sortedKeys(req.Services) {
		ss, err := b.c.AppsV1().StatefulSets(ns).Get(ctx, svc, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && ss.Labels[kube.LabelManagedBy] != kube.ManagedBy {
			return res, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such service: %s in project %s", svc, project))
		}
		if err != nil {
			return res, fromAPI(err)
		}
		// a merge patch of the one field, by the same manager: an apply of
		// only spec.replicas would give up berth's other fields
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, req.Services[svc])
		if _, err := b.c.AppsV1().StatefulSets(ns).Patch(ctx, svc, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return res, fmt.Errorf("scale %s: %w", svc, fromAPI(err))
		}
		res.Actions = append(res.Actions, compose.Action{Kind: "StatefulSet", Name: svc, Action: fmt.Sprintf("Scaled to %d", req.Services[svc])})
	}
	return res, nil
}

// Down deletes the project's StatefulSets and Services berth owns; with
// Volumes its claims (named and per-replica) and the namespace too. Without
// Volumes the namespace stays, holding the claims, as compose keeps volumes.
// A project with nothing is not an error.
func (b *Backend) Down(ctx context.Context, req compose.DownRequest) (*compose.UpResult, error) {
	if req.Project == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("down needs a project name")
	}
	ns := b.Namespace(req.Project)
	sel := metav1.ListOptions{LabelSelector: ownedSelector + "," + compose.LabelProject + "=" + req.Project}
	res := &compose.UpResult{Project: req.Project}
	del := metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}
	if req.Timeout != nil {
		del.GracePeriodSeconds = ptr(int64(*req.Timeout))
	}
	sets, err := b.c.AppsV1().StatefulSets(ns).List(ctx, sel)
	if err != nil {
		return res, fromAPI(err)
	}
	for _, s := range sets.Items {
		if err := ignoreGone(b.c.AppsV1().StatefulSets(ns).Delete(ctx, s.Name, del)); err != nil {
			return res, fmt.Errorf("delete StatefulSet %s: %w", s.Name, fromAPI(err))
		}
		res.Actions = append(res.Actions, compose.Action{Kind: "StatefulSet", Name: s.Name, Action: "Removed"})
	}
	svcs, err := b.c.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return res, fromAPI(err)
	}
	for _, s := range svcs.Items {
		if err := ignoreGone(b.c.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})); err != nil {
			return res, fmt.Errorf("delete Service %s: %w", s.Name, fromAPI(err))
		}
		res.Actions = append(res.Actions, compose.Action{Kind: "Service", Name: s.Name, Action: "Removed"})
	}
	if !req.Volumes {
		return res, nil
	}
	claims, err := b.c.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, fromAPI(err)
	}
	for _, c := range claims.Items {
		// the named volumes carry berth's labels; the per-replica claims of
		// volumeClaimTemplates carry the pod template's, which include them
		if c.Labels[kube.LabelManagedBy] != kube.ManagedBy || c.Labels[compose.LabelProject] != req.Project {
			continue
		}
		if err := ignoreGone(b.c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c.Name, metav1.DeleteOptions{})); err != nil {
			return res, fmt.Errorf("delete PersistentVolumeClaim %s: %w", c.Name, fromAPI(err))
		}
		res.Actions = append(res.Actions, compose.Action{Kind: "Volume", Name: c.Name, Action: "Removed"})
	}
	n, err := b.c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return res, nil
	}
	if err != nil {
		return res, fromAPI(err)
	}
	if n.Labels[kube.LabelManagedBy] == kube.ManagedBy {
		if err := ignoreGone(b.c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})); err != nil {
			return res, fmt.Errorf("delete Namespace %s: %w", ns, fromAPI(err))
		}
		res.Actions = append(res.Actions, compose.Action{Kind: "Namespace", Name: ns, Action: "Removed"})
	}
	return res, nil
}

func ignoreObj[T any](_ T, err error) error { return err }

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }

// fromAPI classifies an API server's error once, keeping it as the cause.
func fromAPI(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return fmt.Errorf("%w: %w", errdefs.ErrConflict, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %w", errdefs.ErrPermissionDenied, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %w", errdefs.ErrUnauthenticated, err)
	case apierrors.IsServiceUnavailable(err), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
	}
	return err
}

func notImplemented(what string) error {
	return errdefs.ErrNotImplemented.WithMessage(what + " is not supported by the Kubernetes backend")
}

// notSupported is notImplemented with the reason after it.
func notSupported(what, why string) error {
	return errdefs.ErrNotImplemented.WithMessage(what + " is not supported by the Kubernetes backend: " + why)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
