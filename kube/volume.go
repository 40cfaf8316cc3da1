package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthd/berth/compose"
)

// claimName is the PVC of a named volume: its key in the file, made a DNS
// label (db_data -> db-data); the key stays in the volume label.
func claimName(key string) (string, error) {
	n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(key))
	if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volume %q cannot be a Kubernetes claim name: %s", key, strings.Join(errs, "; ")))
	}
	return n, nil
}

// claims are the project's named volumes that services use, one
// PersistentVolumeClaim each, shared by every pod that mounts it as a
// Docker volume is shared by its containers: ReadWriteMany when more than
// one pod mounts it, else ReadWriteOnce. External volumes are claims that
// must exist already: they are referred to, not made.
func (t *translator) claims() ([]*corev1.PersistentVolumeClaim, error) {
	pods := map[string]int{} // volume key -> pods mounting it
	for _, s := range t.p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				pods[v.Source] += s.GetScale()
			}
		}
	}
	size, err := resource.ParseQuantity(t.o.DefaultVolumeSize)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("default volume size %q: %v", t.o.DefaultVolumeSize, err))
	}
	var out []*corev1.PersistentVolumeClaim
	taken := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(pods)) {
		v, ok := t.p.Volumes[key]
		if !ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service volume %q is not a top-level volume", key))
		}
		if bool(v.External) {
			continue
		}
		if (v.Driver != "" && v.Driver != "local") || len(v.DriverOpts) > 0 {
			return nil, notImplemented("volume "+key+": driver and driver_opts", "a claim's storage is its storage class's")
		}
		name, err := claimName(key)
		if err != nil {
			return nil, err
		}
		if prev, ok := taken[name]; ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volumes %q and %q both become the claim %q", prev, key, name))
		}
		taken[name] = key
		c, err := t.newClaim(name, key, v.Labels, pods[key], size)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// newClaim is the PVC of volume key, mounted by pods pods.
func (t *translator) newClaim(name, key string, docker map[string]string, pods int, size resource.Quantity) (*corev1.PersistentVolumeClaim, error) {
	mode := corev1.ReadWriteOnce
	if pods > 1 {
		mode = corev1.ReadWriteMany
	}
	labels, annotations, err := splitLabels(merged(docker, map[string]string{compose.LabelVolume: key}))
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", key, err)
	}
	c := &corev1.PersistentVolumeClaim{}
	c.APIVersion, c.Kind = "v1", "PersistentVolumeClaim"
	c.Name, c.Namespace = name, t.ns
	c.Labels, c.Annotations = merged(labels, t.projectLabels()), nilIfEmpty(annotations)
	c.Spec = corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{mode},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
	}
	return c, nil
}

// Claim is the PVC of compose's `docker volume create` of volume key of a
// project, with the volume's Docker labels (compose's own among them), as
// the container creates that mount it will apply it: one pod mounts it
// (ReadWriteOnce), the default size. Driver and options are refused.
func Claim(project, key string, labels map[string]string, o Options) (*corev1.PersistentVolumeClaim, error) {
	if o.DefaultVolumeSize == "" {
		o.DefaultVolumeSize = "1Gi"
	}
	t := &translator{p: &types.Project{Name: project}, o: o, ns: o.NamespacePrefix + project}
	if errs := validation.IsDNS1123Label(t.ns); len(errs) > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("project name %q cannot be a Kubernetes namespace: %s", t.ns, strings.Join(errs, "; ")))
	}
	name, err := claimName(key)
	if err != nil {
		return nil, err
	}
	size, err := resource.ParseQuantity(o.DefaultVolumeSize)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("default volume size %q: %v", o.DefaultVolumeSize, err))
	}
	return t.newClaim(name, key, labels, 1, size)
}

// volumes are the pod's volumes and claim templates for the service's
// mounts, and the mounts put on c: named volume -> the project's claim;
// anonymous volume -> a claim template (one per replica, kept across
// recreates as compose keeps a replica's anonymous volumes); tmpfs and
// shm_size -> memory emptyDir; bind mounts are refused (the client's paths
// are not on the cluster's nodes).
func (t *translator) volumes(s types.ServiceConfig, c *corev1.Container) ([]corev1.Volume, []corev1.PersistentVolumeClaim, error) {
	var vols []corev1.Volume
	var templates []corev1.PersistentVolumeClaim
	seen := map[string]bool{}
	in := "service " + s.Name + ": "
	mount := func(name, target string, ro bool, sub string) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: target, ReadOnly: ro, SubPath: sub})
	}
	memory := func(name string, size int64) corev1.Volume {
		ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
		if size > 0 {
			ed.SizeLimit = resource.NewQuantity(size, resource.BinarySI)
		}
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: ed}}
	}
	for _, v := range s.Volumes {
		sub := ""
		if v.Volume != nil {
			sub = v.Volume.Subpath
		}
		switch {
		case v.Type == types.VolumeTypeVolume && v.Source != "":
			pv := t.p.Volumes[v.Source]
			claim, err := claimName(v.Source)
			if err != nil {
				return nil, nil, err
			}
			if bool(pv.External) {
				if claim, err = claimName(pv.Name); err != nil {
					return nil, nil, err
				}
			}
			if !seen[claim] {
				seen[claim] = true
				vols = append(vols, corev1.Volume{Name: claim, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
			}
			mount(claim, v.Target, v.ReadOnly, sub)
		case v.Type == types.VolumeTypeVolume:
			name := anonymousTemplate(v.Target)
			templates = append(templates, corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: t.selector(s.Name)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(t.o.DefaultVolumeSize)}},
				},
			})
			mount(name, v.Target, v.ReadOnly, sub)
		case v.Type == types.VolumeTypeTmpfs:
			name := "tmpfs-" + shortHash(v.Target)
			var size int64
			if v.Tmpfs != nil {
				size = int64(v.Tmpfs.Size)
			}
			vols = append(vols, memory(name, size))
			mount(name, v.Target, v.ReadOnly, "")
		case v.Type == types.VolumeTypeBind:
			return nil, nil, notImplemented(in+"bind mount "+v.Source, "the client's files are not on the cluster's nodes")
		default:
			return nil, nil, notImplemented(in+"volume type "+v.Type, "not mapped")
		}
	}
	for _, tm := range s.Tmpfs {
		target, opts, _ := strings.Cut(tm, ":")
		var size int64
		for o := range strings.SplitSeq(opts, ",") {
			if v, ok := strings.CutPrefix(o, "size="); ok {
				// Docker's sizes: 64m is 64 MiB (to Kubernetes, 0.064 bytes)
				b, err := units.RAMInBytes(v)
				if err != nil || b < 0 {
					return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%stmpfs %q: size %q is not a size", in, tm, v))
				}
				size = b
			}
		}
		name := "tmpfs-" + shortHash(target)
		vols = append(vols, memory(name, size))
		mount(name, target, false, "")
	}
	if s.ShmSize > 0 {
		vols = append(vols, memory("shm", int64(s.ShmSize)))
		mount("shm", "/dev/shm", false, "")
	}
	slices.SortFunc(c.VolumeMounts, func(a, b corev1.VolumeMount) int { return strings.Compare(a.MountPath, b.MountPath) })
	return vols, templates, nil
}

// anonymousTemplate is the claim template of an anonymous volume at
// target; anonymousClaim the claim the StatefulSet makes of it for replica
// n of service (<template>-<pod>).
func anonymousTemplate(target string) string { return "anon-" + shortHash(target) }

func anonymousClaim(target, service string, n int) string {
	return fmt.Sprintf("%s-%s-%d", anonymousTemplate(target), service, n)
}

// shortHash names a volume after its mount path, so that its name is the
// same however the file orders the mounts.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:5])
}
