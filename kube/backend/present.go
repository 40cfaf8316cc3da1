package backend

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	corev1 "k8s.io/api/core/v1"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube"
)

// podIndexLabel is the StatefulSet controller's label with the pod's
// ordinal; ordinals start at 1 (kube.Translate), so it is the compose
// container number.
const podIndexLabel = kube.PodIndexLabel

// name is the Docker name of a pod, without the leading slash: container_name
// (or a `docker run --name`) from the annotation, else compose's
// <project>-<service>-<n> for a replica, else the pod's own name.
func name(p *corev1.Pod) string {
	if n := p.Annotations[kube.AnnotationContainerName]; n != "" {
		return n
	}
	project, service, n := p.Labels[compose.LabelProject], p.Labels[compose.LabelService], p.Labels[podIndexLabel]
	if project != "" && service != "" && n != "" {
		return project + "-" + service + "-" + n
	}
	return p.Name
}

// dockerLabels are the labels `docker inspect` shows: the pod's labels and
// the Docker labels kube.Translate had to keep as annotations, less what
// Kubernetes and berth add for themselves, plus compose's container number.
func dockerLabels(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	for k, v := range p.Labels {
		if strings.Contains(k, "kubernetes.io/") || k == "controller-revision-hash" {
			continue
		}
		out[k] = v
	}
	for k, v := range p.Annotations {
		if strings.HasPrefix(k, "com.docker.") || strings.HasPrefix(k, dockerLabelAnnotationPrefix) {
			out[strings.TrimPrefix(k, dockerLabelAnnotationPrefix)] = v
		}
	}
	if n := p.Labels[podIndexLabel]; n != "" && out[compose.LabelProject] != "" {
		out[compose.LabelContainerNumber] = n
	}
	return out
}

// dockerLabelAnnotationPrefix marks the labels of a `docker run` that break
// Kubernetes' label rules, kept as annotations.
const dockerLabelAnnotationPrefix = "label.berth/"

// state is a pod's main container as Docker states it.
type state struct {
	status     container.ContainerState
	text       string // docker ps' STATUS
	health     container.HealthStatus
	exitCode   int
	started    time.Time
	finished   time.Time
	restarts   int
	errMessage string
}

// podState reads the first container's status; a pod not scheduled or
// pulling is "created", one being deleted "removing".
func podState(p *corev1.Pod, now time.Time) state {
	var cs *corev1.ContainerStatus
	if len(p.Spec.Containers) > 0 {
		for i := range p.Status.ContainerStatuses {
			if p.Status.ContainerStatuses[i].Name == p.Spec.Containers[0].Name {
				cs = &p.Status.ContainerStatuses[i]
			}
		}
	}
	st := state{status: container.StateCreated, text: "Created"}
	if cs != nil {
		st.restarts = int(cs.RestartCount)
	}
	switch {
	case p.DeletionTimestamp != nil:
		st.status, st.text = container.StateRemoving, "Removal In Progress"
	case cs == nil:
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			st.status, st.text = container.StateExited, "Exited"
		}
	case cs.State.Running != nil:
		st.status = container.StateRunning
		st.started = cs.State.Running.StartedAt.Time
		st.text = "Up " + units.HumanDuration(now.Sub(st.started))
		if hasProbe(p) {
			st.health = container.Starting
			if cs.Ready {
				st.health = container.Healthy
			} else if cs.Started != nil && *cs.Started && st.started.Before(now.Add(-time.Minute)) {
				// readiness failing for a while after the start: what Docker
				// would show as unhealthy
				st.health = container.Unhealthy
			}
			st.text += " (" + string(st.health) + ")"
		}
	case cs.State.Terminated != nil:
		t := cs.State.Terminated
		st.status, st.exitCode = container.StateExited, int(t.ExitCode)
		st.started, st.finished, st.errMessage = t.StartedAt.Time, t.FinishedAt.Time, t.Message
		st.text = fmt.Sprintf("Exited (%d) %s ago", t.ExitCode, units.HumanDuration(now.Sub(st.finished)))
	case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
		// between an exit and the kubelet's restart
		t := cs.LastTerminationState.Terminated
		st.status, st.exitCode = container.StateRestarting, int(t.ExitCode)
		st.finished = t.FinishedAt.Time
		st.text = fmt.Sprintf("Restarting (%d) %s ago", t.ExitCode, units.HumanDuration(now.Sub(st.finished)))
	case cs.State.Waiting != nil:
		st.errMessage = strings.TrimSpace(cs.State.Waiting.Reason + " " + cs.State.Waiting.Message)
	}
	if st.status == container.StateCreated && p.Status.Phase == corev1.PodPending && hasProbe(p) {
		// started (the pod exists), not running yet: Docker's health is
		// "starting" from the start, and compose's wait for
		// service_healthy fails on a started container without one
		st.health = container.Starting
	}
	return st
}

func hasProbe(p *corev1.Pod) bool {
	return len(p.Spec.Containers) > 0 && p.Spec.Containers[0].ReadinessProbe != nil
}

// summary is the pod as `GET /containers/json` lists it.
func summary(p *corev1.Pod, now time.Time) container.Summary {
	st := podState(p, now)
	c := mainContainer(p)
	s := container.Summary{
		ID:      containerID(p),
		Names:   []string{"/" + name(p)},
		Image:   c.Image,
		ImageID: imageID(p),
		Command: strings.Join(append(append([]string(nil), c.Command...), c.Args...), " "),
		Created: p.CreationTimestamp.Unix(),
		Labels:  dockerLabels(p),
		State:   st.status,
		Status:  st.text,
	}
	s.HostConfig.NetworkMode = p.Namespace
	if st.health != "" {
		s.Health = &container.HealthSummary{Status: st.health}
	}
	s.Ports = dockerPorts(p)
	s.NetworkSettings = &container.NetworkSettingsSummary{Networks: dockerNetworks(p)}
	s.Mounts = dockerMounts(p)
	return s
}

// inspect is the pod as `GET /containers/{id}/json` shows it.
func inspect(p *corev1.Pod, now time.Time) *container.InspectResponse {
	st := podState(p, now)
	c := mainContainer(p)
	argv := undollar(append(append([]string(nil), c.Command...), c.Args...))
	r := &container.InspectResponse{
		ID:           containerID(p),
		Created:      p.CreationTimestamp.UTC().Format(time.RFC3339Nano),
		Image:        imageID(p),
		Name:         "/" + name(p),
		RestartCount: st.restarts,
		Driver:       "kubernetes",
		Platform:     "linux",
		State: &container.State{
			Status:     st.status,
			Running:    st.status == container.StateRunning,
			Restarting: st.status == container.StateRestarting,
			ExitCode:   st.exitCode,
			Error:      st.errMessage,
			StartedAt:  dockerTime(st.started),
			FinishedAt: dockerTime(st.finished),
		},
		Config: &container.Config{
			Hostname:   p.Name,
			Image:      c.Image,
			Env:        env(c),
			Entrypoint: undollar(c.Command),
			Cmd:        undollar(c.Args),
			WorkingDir: c.WorkingDir,
			Tty:        c.TTY,
			OpenStdin:  c.Stdin,
			Labels:     dockerLabels(p),
		},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(p.Namespace)},
	}
	if len(argv) > 0 {
		r.Path, r.Args = argv[0], argv[1:]
	}
	if st.health != "" {
		r.State.Health = &container.Health{Status: st.health}
	}
	r.Config.Healthcheck = healthcheck(p)
	r.HostConfig.RestartPolicy = restartPolicy(p)
	r.NetworkSettings = &container.NetworkSettings{Networks: dockerNetworks(p)}
	r.Mounts = dockerMounts(p)
	return r
}

func mainContainer(p *corev1.Pod) corev1.Container {
	if len(p.Spec.Containers) == 0 {
		return corev1.Container{}
	}
	return p.Spec.Containers[0]
}

// imageID is the image the kubelet resolved (its digest reference), else
// the reference asked for.
func imageID(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.ImageID != "" && len(p.Spec.Containers) > 0 && cs.Name == p.Spec.Containers[0].Name {
			return cs.ImageID
		}
	}
	return mainContainer(p).Image
}

// env undoes kube.Translate's doubling of $ (the kubelet expands $(VAR)).
func env(c corev1.Container) []string {
	var out []string
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue
		}
		out = append(out, e.Name+"="+strings.ReplaceAll(e.Value, "$$", "$"))
	}
	return out
}

func restartPolicy(p *corev1.Pod) container.RestartPolicy {
	if r := p.Annotations[kube.AnnotationRestart]; r != "" {
		mode, max, _ := strings.Cut(r, ":")
		n, _ := strconv.Atoi(max)
		return container.RestartPolicy{Name: container.RestartPolicyMode(mode), MaximumRetryCount: n}
	}
	switch p.Spec.RestartPolicy {
	case corev1.RestartPolicyAlways:
		return container.RestartPolicy{Name: container.RestartPolicyAlways}
	case corev1.RestartPolicyOnFailure:
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure}
	}
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

// dockerTime is Docker's format for a state time; the zero time is
// Docker's zero too.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// undollar undoes the doubling of $ in a command (see env).
func undollar(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.ReplaceAll(s, "$$", "$"))
	}
	return out
}

// healthcheck is the readiness probe read back as the Docker healthcheck
// it came from (kube.Translate's mapping reversed), so that `docker
// inspect` and compose (up --wait falls back to "running" only for a
// container without one) see it; nil without a probe.
func healthcheck(p *corev1.Pod) *container.HealthConfig {
	if !hasProbe(p) {
		return nil
	}
	pr := p.Spec.Containers[0].ReadinessProbe
	if pr.Exec == nil {
		return nil
	}
	test := append([]string{"CMD"}, pr.Exec.Command...)
	if c := pr.Exec.Command; len(c) == 3 && c[0] == "/bin/sh" && c[1] == "-c" {
		test = []string{"CMD-SHELL", c[2]}
	}
	h := &container.HealthConfig{
		Test:     test,
		Interval: time.Duration(pr.PeriodSeconds) * time.Second,
		Timeout:  time.Duration(pr.TimeoutSeconds) * time.Second,
		Retries:  int(pr.FailureThreshold),
	}
	if d, err := time.ParseDuration(p.Annotations[kube.AnnotationStartPeriod]); err == nil {
		h.StartPeriod = d
	}
	return h
}
