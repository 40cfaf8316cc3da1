package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
	"github.com/berthd/berth/runtime"
)

// Create makes the Pod of a plain `docker run` and keeps it until Start
// applies it: a pod cannot exist without running, a created container can.
// Options a pod cannot express are refused (501), never dropped.
func (b *Backend) Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error) {
	if req.Config != nil && req.Config.Labels[compose.LabelProject] != "" {
		return b.createReplica(ctx, req)
	}
	if err := refuseCreate(req); err != nil {
		return container.CreateResponse{}, err
	}
	dockerName := strings.TrimPrefix(req.Name, "/")
	podName := dockerName
	if podName == "" || len(validation.IsDNS1123Label(podName)) > 0 {
		podName = "run-" + randomHex(6)
	}
	if dockerName == "" {
		dockerName = podName
	}
	if _, err := b.lookup(dockerName); err == nil {
		return container.CreateResponse{}, conflictName(dockerName)
	}
	if _, _, ok := b.localFind(dockerName); ok {
		return container.CreateResponse{}, conflictName(dockerName)
	}
	p, err := b.podFor(req, podName, dockerName)
	if err != nil {
		return container.CreateResponse{}, err
	}
	id := containerID(p)
	b.setLocal(id, &local{pod: p, state: localCreated})
	b.event(p, events.ActionCreate, nil)
	return container.CreateResponse{ID: id}, nil
}

func conflictName(n string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Conflict. The container name \"/%s\" is already in use. You have to remove (or rename) that container to be able to reuse that name.", n))
}

// refuseCreate names the first option of a create that a pod cannot take.
func refuseCreate(req runtime.CreateRequest) error {
	cfg, hc := req.Config, req.HostConfig
	if cfg == nil || cfg.Image == "" {
		return errdefs.ErrInvalidArgument.WithMessage("config: image is required")
	}
	if hc == nil {
		return nil
	}
	refused := []struct {
		set  bool
		what string
	}{
		{len(hc.Binds) > 0 || len(hc.Mounts) > 0, "bind mounts and volumes (--volume, --mount)"},
		{len(hc.VolumesFrom) > 0, "--volumes-from"},
		{len(hc.PortBindings) > 0 || hc.PublishAllPorts, "publishing ports of a plain container (-p, -P)"},
		{len(hc.Links) > 0, "--link"},
		{hc.Privileged, "--privileged"},
		{len(hc.Resources.Devices) > 0 || len(hc.Resources.DeviceRequests) > 0, "devices (--device, --gpus)"},
		{hc.AutoRemove, "--rm"},
		{!(hc.NetworkMode == "" || hc.NetworkMode == "default" || hc.NetworkMode == "bridge"), "--network " + string(hc.NetworkMode)},
		{hc.PidMode != "" || hc.UTSMode != "" || (hc.IpcMode != "" && hc.IpcMode != "private"), "--pid, --uts and --ipc"},
		{len(hc.Tmpfs) > 0, "--tmpfs on a plain container"},
		{len(hc.SecurityOpt) > 0, "--security-opt"},
	}
	for _, r := range refused {
		if r.set {
			return notImplemented(r.what)
		}
	}
	return nil
}

// podFor is the Pod of a create request, in the default namespace.
func (b *Backend) podFor(req runtime.CreateRequest, podName, dockerName string) (*corev1.Pod, error) {
	cfg, hc := req.Config, req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	c := corev1.Container{
		Name:       "main",
		Image:      cfg.Image,
		Command:    dollars(cfg.Entrypoint),
		Args:       dollars(cfg.Cmd),
		WorkingDir: cfg.WorkingDir,
		TTY:        cfg.Tty,
		Stdin:      cfg.OpenStdin,
		// docker run pulls only a missing image (the CLI pulls first for
		// --pull always); left empty, the API server would default an
		// untagged or :latest image to Always, and a node that cannot
		// reach the registry fails a pod whose image it has
		ImagePullPolicy: corev1.PullIfNotPresent,
	}
	for _, e := range cfg.Env {
		k, v, ok := strings.Cut(e, "=")
		if ok {
			c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: strings.ReplaceAll(v, "$", "$$")})
		}
	}
	if cfg.User != "" {
		uid, gid, _ := strings.Cut(cfg.User, ":")
		u, err := strconv.ParseInt(uid, 10, 64)
		if err != nil {
			return nil, notImplemented(fmt.Sprintf("a user name (--user %s): a pod runs as numeric ids, and it", cfg.User))
		}
		c.SecurityContext = &corev1.SecurityContext{RunAsUser: &u}
		if gid != "" {
			g, err := strconv.ParseInt(gid, 10, 64)
			if err != nil {
				return nil, notImplemented(fmt.Sprintf("a group name (--user %s)", cfg.User))
			}
			c.SecurityContext.RunAsGroup = &g
		}
	}
	for p := range cfg.ExposedPorts {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: int32(p.Num()), Protocol: corev1.Protocol(strings.ToUpper(string(p.Proto())))})
	}
	labels := map[string]string{kube.LabelManagedBy: kube.ManagedBy}
	annotations := map[string]string{kube.AnnotationContainerName: dockerName}
	for k, v := range cfg.Labels {
		if len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 && !strings.Contains(k, "kubernetes.io/") {
			labels[k] = v
		} else {
			annotations[dockerLabelAnnotationPrefix+k] = v
		}
	}
	grace := int64(kube.DefaultStopSeconds)
	if cfg.StopTimeout != nil {
		if *cfg.StopTimeout < 0 {
			return nil, notSupported(fmt.Sprintf("--stop-timeout %d (a stop that waits forever)", *cfg.StopTimeout), "a pod's grace period is finite")
		}
		grace = int64(*cfg.StopTimeout)
	}
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: b.defNS, Labels: labels, Annotations: annotations, CreationTimestamp: metav1.NewTime(b.now())},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			RestartPolicy:                 podRestart(hc.RestartPolicy),
			EnableServiceLinks:            ptr(false),
			AutomountServiceAccountToken:  ptr(false),
			Hostname:                      cfg.Hostname,
			TerminationGracePeriodSeconds: &grace,
		},
	}
	if hc.RestartPolicy.Name != "" {
		p.Annotations[kube.AnnotationRestart] = string(hc.RestartPolicy.Name)
	}
	return p, nil
}

func podRestart(rp container.RestartPolicy) corev1.RestartPolicy {
	switch rp.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return corev1.RestartPolicyAlways
	case container.RestartPolicyOnFailure:
		return corev1.RestartPolicyOnFailure
	}
	return corev1.RestartPolicyNever
}

// dollars doubles $, which the kubelet would expand as $(VAR) and Docker does not.
func dollars(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.ReplaceAll(s, "$", "$$"))
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start applies a created (or stopped) container's Pod, and the default
// namespace; a compose replica is started by its StatefulSet. A container
// the cluster has a pod for is running, or was: 304, as Docker answers.
func (b *Backend) Start(ctx context.Context, ref string) error {
	if p, err := b.lookup(ref); err == nil {
		if isOneShotPod(p) && podState(p, b.now()).status == container.StateExited {
			// a one-shot replica runs again, as a container that exited does
			return b.startOneShot(ctx, containerID(p), &local{pod: cleanCopy(p), state: localStopped})
		}
		if isReplica(p) || podState(p, b.now()).status != container.StateExited {
			return errdefs.ErrNotModified
		}
		// a plain pod whose process ended (restart policy no): a pod does
		// not run twice, so it is replaced by the same spec
		if err := b.replacePod(ctx, p); err != nil {
			return err
		}
	}
	id, l, ok := b.localFind(ref)
	if !ok {
		return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	if l.state == localStarting {
		return errdefs.ErrNotModified
	}
	if isReplica(l.pod) {
		return b.startReplica(ctx, id, l)
	}
	p := cleanCopy(l.pod)
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: b.defNS, Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy}}}
	if _, _, err := b.apply(ctx, ns); err != nil {
		return err
	}
	if _, _, err := b.apply(ctx, p); err != nil {
		return err
	}
	b.setLocal(id, &local{pod: p, state: localStarting})
	return nil
}

// Remove deletes a plain container's Pod (or forgets a created or stopped
// one); a compose replica is scaled away first (removeReplica).
func (b *Backend) Remove(ctx context.Context, ref string, opts runtime.RemoveOptions) error {
	if b.beingReplaced(ref) { // compose removes the replaced one by its id
		b.removeReplaced(ref)
		return nil
	}
	p, err := b.lookup(ref)
	if err != nil {
		id, l, ok := b.localFind(ref)
		if !ok {
			return err
		}
		if b.beingReplaced(id) {
			b.removeReplaced(id)
			return nil
		}
		b.mu.Lock()
		delete(b.replacing, id) // a recreate's new container, removed before its rename
		b.mu.Unlock()
		if l.state == localStarting && !opts.Force {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container \"/%s\": container is starting: stop the container before removing or force remove", name(l.pod)))
		}
		b.setLocal(id, nil)
		b.event(l.pod, events.ActionDestroy, nil)
		if isReplica(l.pod) {
			if opts.RemoveVolumes {
				if err := b.removeAnonymous(ctx, l.pod); err != nil {
					return err
				}
			}
			return b.retireService(ctx, keyOf(l.pod))
		}
		return nil
	}
	if isOneShotPod(p) {
		return b.removeOneShot(ctx, p, opts)
	}
	if isReplica(p) {
		return b.removeReplica(ctx, p, opts)
	}
	st := podState(p, b.now())
	if st.status == container.StateRunning && !opts.Force {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", name(p)))
	}
	del := metav1.DeleteOptions{}
	if opts.Force {
		del.GracePeriodSeconds = ptr(int64(0))
	}
	return fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, del)))
}

// replacePod deletes an exited plain pod and waits until it is gone, so
// that Start can apply it again; it stays a stopped container meanwhile.
func (b *Backend) replacePod(ctx context.Context, p *corev1.Pod) error {
	b.quietly(p)
	b.preStopped(p, int32(podState(p, b.now()).exitCode))
	if err := fromAPI(ignoreGone(b.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))); err != nil {
		b.setLocal(containerID(p), nil)
		return err
	}
	return b.recordStopped(ctx, p, ptr(int64(0)), int32(podState(p, b.now()).exitCode))
}
