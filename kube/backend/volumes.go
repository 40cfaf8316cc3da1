package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/kube"
)

// A compose project's named volume is its PersistentVolumeClaim (the one
// kube.Translate makes for it: claim <key> with _ and . as -, in the
// project's namespace). `docker volume create` of compose's <project>_<key>
// applies that claim (field manager berth-volume, so that the container
// creates' applies by manager berth, which carry fewer labels, do not take
// compose's labels off it) with its Docker name as an annotation. Named
// volumes only: the per-replica claims of anonymous volumes are not listed.

// AnnotationVolumeName is a claim's Docker volume name when `docker volume
// create` made it (else <project>_<key>, compose's default).
const AnnotationVolumeName = "berth/volume-name"

// volumeManager is the field manager of the claims volume create applies.
const volumeManager = "berth-volume"

const volumeDriver = "kubernetes"

// Volumes serves the volume endpoints (engine/router/volumes) from claims.
type Volumes struct{ b *Backend }

// Volumes returns the volume side of the backend.
func (b *Backend) Volumes() *Volumes { return &Volumes{b: b} }

// Create applies the claim of a compose project's volume. A volume outside
// a compose project, a driver or driver options are refused (501).
func (v *Volumes) Create(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	project, key := req.Labels[compose.LabelProject], req.Labels[compose.LabelVolume]
	if project == "" || key == "" {
		return nil, notSupported(fmt.Sprintf("volume %s: a volume outside a compose project (without the labels %s and %s)", req.Name, compose.LabelProject, compose.LabelVolume), "a volume is a claim in its project's namespace")
	}
	if req.Driver != "" && req.Driver != "local" || len(req.DriverOpts) > 0 {
		return nil, notSupported("volume "+req.Name+": driver and driver options", "a claim's storage is its storage class's")
	}
	if req.Name == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("a compose volume needs a name")
	}
	if cur, err := v.find(ctx, req.Name); err == nil {
		return cur, nil // Docker answers the existing volume
	}
	c, err := kube.Claim(project, key, req.Labels, v.b.o)
	if err != nil {
		return nil, err
	}
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationVolumeName] = req.Name
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// the namespace first (a claim lives in one), by the same manager: an
	// apply of fewer labels by manager berth would take berth's others off
	nsData, err := json.Marshal(&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: c.Namespace, Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy, compose.LabelProject: project}}})
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: volumeManager, Force: ptr(true)}
	if _, err := v.b.c.CoreV1().Namespaces().Patch(ctx, c.Namespace, types.ApplyPatchType, nsData, opts); err != nil {
		return nil, fmt.Errorf("volume %s: apply Namespace %s: %w", req.Name, c.Namespace, fromAPI(err))
	}
	out, err := v.b.c.CoreV1().PersistentVolumeClaims(c.Namespace).Patch(ctx, c.Name, types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, fmt.Errorf("volume %s: apply PersistentVolumeClaim %s/%s: %w", req.Name, c.Namespace, c.Name, fromAPI(err))
	}
	vol := v.present(out)
	return &vol, nil
}

// claims are berth's named-volume claims in every namespace.
func (v *Volumes) claims(ctx context.Context) ([]corev1.PersistentVolumeClaim, error) {
	list, err := v.b.c.CoreV1().PersistentVolumeClaims(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: ownedSelector + "," + compose.LabelVolume})
	if err != nil {
		return nil, fromAPI(err)
	}
	return list.Items, nil
}

// volumeName is a claim's Docker name.
func volumeName(c *corev1.PersistentVolumeClaim) string {
	if n := c.Annotations[AnnotationVolumeName]; n != "" {
		return n
	}
	return c.Labels[compose.LabelProject] + "_" + c.Labels[compose.LabelVolume]
}

func (v *Volumes) find(ctx context.Context, name string) (*volume.Volume, error) {
	c, err := v.claim(ctx, name)
	if err != nil {
		return nil, err
	}
	vol := v.present(c)
	return &vol, nil
}

func (v *Volumes) claim(ctx context.Context, name string) (*corev1.PersistentVolumeClaim, error) {
	claims, err := v.claims(ctx)
	if err != nil {
		return nil, err
	}
	for i := range claims {
		if volumeName(&claims[i]) == name {
			return &claims[i], nil
		}
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("get %s: no such volume", name))
}

// present is a claim as a Docker volume: its Docker labels back (the
// claim's less Kubernetes' own, plus the compose labels kept as
// annotations), the claim's place and state in Status.
func (v *Volumes) present(c *corev1.PersistentVolumeClaim) volume.Volume {
	labels := map[string]string{}
	for k, val := range c.Labels {
		if k != kube.LabelManagedBy {
			labels[k] = val
		}
	}
	for k, val := range c.Annotations {
		if strings.HasPrefix(k, "com.docker.compose.") {
			labels[k] = val
		}
	}
	status := map[string]any{"Namespace": c.Namespace, "Claim": c.Name, "Phase": string(c.Status.Phase)}
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		status["Requested"] = q.String()
	}
	if c.Spec.StorageClassName != nil {
		status["StorageClass"] = *c.Spec.StorageClassName
	}
	return volume.Volume{
		Name: volumeName(c), Driver: volumeDriver, Labels: labels, Scope: "local", Options: map[string]string{},
		CreatedAt: c.CreationTimestamp.UTC().Format(time.RFC3339), Status: status,
	}
}

// Get answers a volume by its Docker name.
func (v *Volumes) Get(ctx context.Context, name string) (*volume.Volume, error) {
	return v.find(ctx, name)
}

// List lists the named-volume claims; filters name, label, driver.
func (v *Volumes) List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error) {
	if err := f.Validate("name", "label", "driver", "dangling"); err != nil {
		return nil, nil, err
	}
	if f.Has("dangling") {
		return nil, nil, notImplemented("volume filter dangling")
	}
	claims, err := v.claims(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []*volume.Volume
	for i := range claims {
		vol := v.present(&claims[i])
		if f.Match("name", vol.Name) && f.MatchKVList("label", vol.Labels) && f.ExactMatch("driver", vol.Driver) {
			out = append(out, &vol)
		}
	}
	slices.SortFunc(out, func(a, b *volume.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil, nil
}

// Remove deletes a volume's claim unless a container mounts it (409, as
// Docker); the namespace goes once nothing of berth's is left in it.
func (v *Volumes) Remove(ctx context.Context, name string, force bool) error {
	c, err := v.claim(ctx, name)
	if errdefs.IsNotFound(err) && force {
		return nil
	}
	if err != nil {
		return err
	}
	if users := v.b.claimUsers(c.Namespace, c.Name); len(users) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	if err := ignoreGone(v.b.c.CoreV1().PersistentVolumeClaims(c.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{})); err != nil {
		return fmt.Errorf("remove %s: delete PersistentVolumeClaim %s/%s: %w", name, c.Namespace, c.Name, fromAPI(err))
	}
	return v.b.retireNamespace(ctx, c.Namespace)
}

// claimUsers are the ids of the containers (pods and records) that mount a
// claim.
func (b *Backend) claimUsers(ns, claim string) []string {
	uses := func(p *corev1.Pod) bool {
		if p.Namespace != ns {
			return false
		}
		for _, vol := range p.Spec.Volumes {
			if vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ClaimName == claim {
				return true
			}
		}
		return false
	}
	ids := map[string]bool{}
	pods, _ := b.ownedPods()
	for _, p := range pods {
		if uses(p) {
			ids[containerID(p)] = true
		}
	}
	b.mu.Lock()
	for id, l := range b.local {
		if uses(l.pod) {
			ids[id] = true
		}
	}
	b.mu.Unlock()
	return slices.Sorted(maps.Keys(ids))
}

// Prune is refused: claims are removed by name or with their project.
func (v *Volumes) Prune(ctx context.Context, f filters.Args) (*volume.PruneReport, error) {
	return nil, notImplemented("volume prune")
}
