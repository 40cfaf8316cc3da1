package kube

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/compose"
)

// statefulSet is a compose service's workload. A StatefulSet, not a
// Deployment: its pods have stable ordinals, started at 1 so that pod
// web-2 is compose's replica 2 (shop-web-2, 2.web.shop.berth.internal), and
// per-replica claims for anonymous volumes.
func (t *translator) statefulSet(s types.ServiceConfig) (*appsv1.StatefulSet, error) {
	if err := refuseService(s); err != nil {
		return nil, err
	}
	if err := refuseUnmapped(s); err != nil {
		return nil, err
	}
	replicas := s.GetScale()
	if s.ContainerName != "" && replicas > 1 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: container_name %q cannot be used with %d replicas", s.Name, s.ContainerName, replicas))
	}
	hash, err := compose.ServiceHash(s)
	if err != nil {
		return nil, err
	}
	docker := merged(s.Labels, s.CustomLabels)
	if _, ok := docker[compose.LabelConfigHash]; !ok {
		// compose v2's creates carry compose's own hash, which it compares
		// on the next up; berth's up computes berth's
		docker[compose.LabelConfigHash] = hash
	}
	if len(s.DependsOn) > 0 {
		docker[compose.LabelDependsOn] = dependsOn(s.DependsOn)
	}
	labels, annotations, err := splitLabels(docker)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	if err := checkAnnotations(s.Annotations); err != nil {
		return nil, fmt.Errorf("service %s: annotations: %w", s.Name, err)
	}
	maps.Copy(annotations, s.Annotations)
	annotations[AnnotationRestart] = restart(s)
	if s.ContainerName != "" {
		annotations[AnnotationContainerName] = s.ContainerName
	}
	if h := s.HealthCheck; h != nil && h.StartPeriod != nil {
		annotations[AnnotationStartPeriod] = time.Duration(*h.StartPeriod).String()
	}

	c, err := container(s)
	if err != nil {
		return nil, err
	}
	vols, templates, err := t.volumes(s, &c)
	if err != nil {
		return nil, err
	}
	pod := corev1.PodSpec{
		Containers: []corev1.Container{c},
		Volumes:    vols,
		// a StatefulSet allows no other; `restart: no` is the backend's to
		// honour (berth/restart), see docs/kubernetes.md
		RestartPolicy: corev1.RestartPolicyAlways,
		// Docker injects no <SVC>_SERVICE_HOST variables and no cluster
		// credentials into a container
		EnableServiceLinks:           new(false),
		AutomountServiceAccountToken: new(false),
		HostAliases:                  hostAliases(s.ExtraHosts),
	}
	if err := podOptions(s, &pod); err != nil {
		return nil, err
	}
	// Docker's stop waits 10 s for a process to end after its stop
	// signal, Kubernetes' 30 s by default: compose down of processes that
	// ignore SIGTERM would take three times as long
	secs := int64(DefaultStopSeconds)
	if s.StopGracePeriod != nil {
		secs = int64(time.Duration(*s.StopGracePeriod).Seconds())
	}
	pod.TerminationGracePeriodSeconds = &secs
	if s.Init != nil && *s.Init {
		// the pod's pause process is PID 1 and reaps, as docker-init does
		pod.ShareProcessNamespace = new(true)
	}

	ss := &appsv1.StatefulSet{}
	ss.APIVersion, ss.Kind = "apps/v1", "StatefulSet"
	ss.Name, ss.Namespace = s.Name, t.ns
	ss.Labels = merged(labels, t.selector(s.Name))
	ss.Annotations = nilIfEmpty(annotations)
	podLabels, podAnnotations := withoutProjectLabels(labels), withoutProjectLabels(annotations)
	ss.Spec = appsv1.StatefulSetSpec{
		Replicas:    new(int32(replicas)),
		Ordinals:    &appsv1.StatefulSetOrdinals{Start: 1},
		Selector:    &metav1.LabelSelector{MatchLabels: t.selector(s.Name)},
		ServiceName: s.Name,
		// compose starts a service's replicas together, not one by one
		PodManagementPolicy: appsv1.ParallelPodManagement,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: merged(podLabels, t.selector(s.Name)), Annotations: nilIfEmpty(podAnnotations)},
			Spec:       pod,
		},
		VolumeClaimTemplates: templates,
		// `down` keeps volumes, `down -v` deletes them: the backend's call
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		},
	}
	return ss, nil
}

const maxServiceName = 52

// projectOnly are the compose labels that say where and with what the
// project was deployed, not what a container is. A change of the pod
// template rolls every pod, and compose does not recreate a container for
// these (they are not in its config hash): they stay on the StatefulSet and
// the Namespace, and the backend adds them when it shows a pod as a
// container.
var projectOnly = []string{compose.LabelWorkingDir, compose.LabelConfigFiles, compose.LabelEnvironmentFile, compose.LabelVersion}

func withoutProjectLabels(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for _, k := range projectOnly {
		delete(out, k)
	}
	return out
}

// refuseService rejects what a pod cannot express, or the backend does not
// map yet, instead of dropping it.
func refuseService(s types.ServiceConfig) error {
	in := "service " + s.Name + ": "
	switch {
	case s.Image == "":
		return notImplemented(in+"build without image", "a cluster pulls its images; push the built image and set image")
	case s.NetworkMode != "":
		return notImplemented(in+"network_mode "+s.NetworkMode, "pods have their own network")
	case s.Pid != "" || s.Ipc != "" || s.Uts != "":
		return notImplemented(in+"pid, ipc and uts modes", "not mapped")
	case len(s.Devices) > 0 || len(s.Gpus) > 0:
		return notImplemented(in+"devices", "devices are the cluster's device plugins' to give")
	case len(s.VolumesFrom) > 0:
		return notImplemented(in+"volumes_from", "not mapped")
	case s.Hostname != "" || s.DomainName != "":
		return notImplemented(in+"hostname", "a replica's hostname is its pod name, which its DNS name needs")
	case s.MacAddress != "":
		return notImplemented(in+"mac_address", "static addresses are not mapped")
	case s.StopSignal != "" && s.StopSignal != "SIGTERM" && s.StopSignal != "TERM":
		return notImplemented(in+"stop_signal "+s.StopSignal, "the kubelet stops containers with SIGTERM")
	case len(s.Configs) > 0 || len(s.Secrets) > 0:
		return notImplemented(in+"configs and secrets", "not mapped yet")
	case s.PullPolicy == types.PullPolicyBuild:
		return notImplemented(in+"pull_policy build", "a cluster pulls its images")
	}
	for name, n := range s.Networks {
		if n != nil && (n.Ipv4Address != "" || n.Ipv6Address != "" || n.MacAddress != "") {
			return notImplemented(in+"network "+name+": static addresses", "a pod's address is the cluster's")
		}
	}
	for _, l := range s.Links {
		if target, alias, ok := strings.Cut(l, ":"); ok && alias != target {
			return notImplemented(in+"link alias "+l, "use a network alias")
		}
	}
	if d := s.Deploy; d != nil {
		if d.Resources.Reservations != nil && len(d.Resources.Reservations.Devices) > 0 {
			return notImplemented(in+"device reservations", "devices are the cluster's device plugins' to give")
		}
		if d.Resources.Limits != nil && d.Resources.Limits.Pids != 0 {
			return notImplemented(in+"deploy.resources.limits.pids", "not mapped")
		}
		if d.Mode != "" && d.Mode != "replicated" {
			return notImplemented(in+"deploy.mode "+d.Mode, "only replicated services are mapped (global would be a DaemonSet)")
		}
	}
	for host, ips := range s.ExtraHosts {
		for _, ip := range ips {
			if net.ParseIP(ip) == nil {
				return notImplemented(fmt.Sprintf("%sextra_hosts %s:%s", in, host, ip), "host aliases need an address; a node has no host-gateway")
			}
		}
	}
	// the pods' controller-revision-hash label is <name>-<10 chars>, and a
	// label value has at most 63
	if len(s.Name) > maxServiceName {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %q: a name longer than %d cannot be a StatefulSet's", s.Name, maxServiceName))
	}
	return nil
}

// container is the service's one container.
func container(s types.ServiceConfig) (corev1.Container, error) {
	c := corev1.Container{
		Name:       s.Name,
		Image:      s.Image,
		Command:    escape(s.Entrypoint),
		Args:       escape(s.Command),
		WorkingDir: s.WorkingDir,
		Env:        envVars(s.Environment),
		TTY:        s.Tty,
		Stdin:      s.StdinOpen,
	}
	ports, err := servicePorts(s)
	if err != nil {
		return c, err
	}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p.Port, Protocol: p.Protocol})
	}
	switch s.PullPolicy {
	case types.PullPolicyAlways:
		c.ImagePullPolicy = corev1.PullAlways
	case types.PullPolicyNever:
		c.ImagePullPolicy = corev1.PullNever
	case types.PullPolicyMissing, types.PullPolicyIfNotPresent, "":
		c.ImagePullPolicy = corev1.PullIfNotPresent
	default:
		return c, notImplemented(fmt.Sprintf("service %s: pull_policy %s", s.Name, s.PullPolicy), "not mapped")
	}
	if c.ReadinessProbe, err = readinessProbe(s.HealthCheck); err != nil {
		return c, fmt.Errorf("service %s: %w", s.Name, err)
	}
	if c.SecurityContext, err = securityContext(s); err != nil {
		return c, err
	}
	c.Resources = resources(s)
	return c, nil
}

// escape doubles every $: the kubelet expands $(VAR) in command, args and
// env values, Docker passes them as they are.
func escape(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$", "$$")
	}
	return out
}

// envVars are the environment in name order. A variable with no value
// (`- FOO` not set where compose ran) is not set, as in Docker.
func envVars(m types.MappingWithEquals) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v := m[k]; v != nil {
			out = append(out, corev1.EnvVar{Name: k, Value: strings.ReplaceAll(*v, "$", "$$")})
		}
	}
	return out
}

// readinessProbe is the healthcheck as readiness, never liveness: Docker
// marks a failing container unhealthy and leaves it running; a liveness
// probe would kill it. Readiness has no start period to map: a pod that is
// not ready yet is Docker's "starting", and one success makes it ready, as
// it makes a container healthy.
func readinessProbe(h *types.HealthCheckConfig) (*corev1.Probe, error) {
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil, nil
	}
	var cmd []string
	switch h.Test[0] {
	case "CMD":
		cmd = h.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("healthcheck test %q: not CMD, CMD-SHELL or NONE", h.Test[0]))
	}
	if len(cmd) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("healthcheck test has no command")
	}
	// Docker's defaults: every 30s, 30s to answer, unhealthy after 3
	p := &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds:    seconds(h.Interval, 30*time.Second),
		TimeoutSeconds:   seconds(h.Timeout, 30*time.Second),
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
	if h.Retries != nil && *h.Retries > 0 {
		p.FailureThreshold = int32(*h.Retries)
	}
	return p, nil
}

// seconds rounds up: probes count whole seconds, at least one.
func seconds(d *types.Duration, def time.Duration) int32 {
	v := def
	if d != nil && *d > 0 {
		v = time.Duration(*d)
	}
	return int32(max(1, (v+time.Second-1)/time.Second))
}

func restart(s types.ServiceConfig) string {
	r := s.Restart
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		r = s.Deploy.RestartPolicy.Condition
		if r == "any" {
			r = "always"
		}
	}
	if r == "" {
		r = "no"
	}
	return r
}

func dependsOn(deps types.DependsOnConfig) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		d := deps[name]
		parts = append(parts, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	return strings.Join(parts, ",")
}

func hostAliases(h types.HostsList) []corev1.HostAlias {
	var out []corev1.HostAlias
	byIP := map[string][]string{}
	for host, ips := range h {
		for _, ip := range ips {
			byIP[ip] = append(byIP[ip], host)
		}
	}
	for _, ip := range slices.Sorted(maps.Keys(byIP)) {
		out = append(out, corev1.HostAlias{IP: ip, Hostnames: slices.Sorted(slices.Values(byIP[ip]))})
	}
	return out
}

func securityContext(s types.ServiceConfig) (*corev1.SecurityContext, error) {
	sc := &corev1.SecurityContext{}
	set := false
	if s.User != "" {
		u, g, hasGroup := strings.Cut(s.User, ":")
		uid, err := strconv.ParseInt(u, 10, 64)
		if err != nil {
			return nil, notImplemented(fmt.Sprintf("service %s: user %q", s.Name, s.User), "a pod runs as numeric ids; give uid[:gid]")
		}
		sc.RunAsUser, set = &uid, true
		if hasGroup {
			gid, err := strconv.ParseInt(g, 10, 64)
			if err != nil {
				return nil, notImplemented(fmt.Sprintf("service %s: user %q", s.Name, s.User), "a pod runs as numeric ids; give uid[:gid]")
			}
			sc.RunAsGroup = &gid
		}
	}
	if s.Privileged {
		sc.Privileged, set = new(true), true
	}
	if s.ReadOnly {
		sc.ReadOnlyRootFilesystem, set = new(true), true
	}
	if len(s.CapAdd) > 0 || len(s.CapDrop) > 0 {
		sc.Capabilities, set = &corev1.Capabilities{Add: caps(s.CapAdd), Drop: caps(s.CapDrop)}, true
	}
	if !set {
		return nil, nil
	}
	return sc, nil
}

func caps(list []string) []corev1.Capability {
	var out []corev1.Capability
	for _, c := range slices.Sorted(slices.Values(list)) {
		out = append(out, corev1.Capability(strings.TrimPrefix(strings.ToUpper(c), "CAP_")))
	}
	return out
}

// resources: limits from deploy.resources.limits (or cpus, mem_limit),
// requests from reservations (or mem_reservation).
func resources(s types.ServiceConfig) corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	cpu, mem, reqCPU, reqMem := float64(s.CPUS), int64(s.MemLimit), float64(0), int64(s.MemReservation)
	if d := s.Deploy; d != nil {
		if l := d.Resources.Limits; l != nil {
			cpu, mem = max(cpu, float64(l.NanoCPUs.Value())), max(mem, int64(l.MemoryBytes))
		}
		if rs := d.Resources.Reservations; rs != nil {
			reqCPU, reqMem = float64(rs.NanoCPUs.Value()), max(reqMem, int64(rs.MemoryBytes))
		}
	}
	list := func(cpu float64, mem int64) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu > 0 {
			l[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(cpu*1000+0.5), resource.DecimalSI)
		}
		if mem > 0 {
			l[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
		}
		if len(l) == 0 {
			return nil
		}
		return l
	}
	r.Limits, r.Requests = list(cpu, mem), list(reqCPU, reqMem)
	return r
}

// PodIndexLabel is the label a StatefulSet's controller puts on each pod
// with its ordinal.
const PodIndexLabel = "apps.kubernetes.io/pod-index"

// ReplicaPod is the pod a StatefulSet's controller makes for ordinal n:
// its template, named <set>-<n>, labelled with the ordinal. The backend
// shows a created container as this pod before it exists; the tests' fake
// controller makes it.
func ReplicaPod(ss *appsv1.StatefulSet, n int, created time.Time) *corev1.Pod {
	t := ss.Spec.Template.DeepCopy()
	labels := map[string]string{PodIndexLabel: strconv.Itoa(n)}
	for k, v := range t.Labels {
		labels[k] = v
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", ss.Name, n), Namespace: ss.Namespace, Labels: labels, Annotations: t.Annotations, CreationTimestamp: metav1.NewTime(created)},
		Spec:       t.Spec,
	}
}

// OneShotPod is the pod of replica n of a one-shot service (one that
// another depends on with service_completed_successfully): a StatefulSet
// restarts a pod whose process ended, so the replica runs as a Pod of the
// StatefulSet's template that the kubelet does not restart (restart `no`:
// Never; `on-failure`: OnFailure), and its StatefulSet stays at 0
// replicas. Its name, <service>-once-<n>, is not a StatefulSet ordinal's,
// so the StatefulSet controller does not adopt it (it would delete it);
// annotation berth/replica-of names the pod it stands for, and its labels
// are a replica's (the headless Service selects it, ordinal label).
func OneShotPod(ss *appsv1.StatefulSet, n int, created time.Time) *corev1.Pod {
	p := ReplicaPod(ss, n, created)
	p.Annotations = maps.Clone(p.Annotations)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationReplicaOf] = p.Name
	p.Name = fmt.Sprintf("%s-once-%d", ss.Name, n)
	// no claims of its own: a run's anonymous volumes live with the run
	for _, c := range ss.Spec.VolumeClaimTemplates {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	if strings.HasPrefix(ss.Annotations[AnnotationRestart], "on-failure") {
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}
	return p
}

// OneShot says whether service is one that sets depend on by completion
// (depends_on condition service_completed_successfully, in their
// com.docker.compose.depends_on annotation).
func OneShot(service string, sets []*appsv1.StatefulSet) bool {
	for _, ss := range sets {
		for part := range strings.SplitSeq(ss.Annotations[compose.LabelDependsOn], ",") {
			svc, rest, _ := strings.Cut(part, ":")
			cond, _, _ := strings.Cut(rest, ":")
			if svc == service && cond == compose.ConditionCompleted {
				return true
			}
		}
	}
	return false
}
