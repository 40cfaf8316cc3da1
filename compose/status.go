package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
)

// DeploymentStatus is a deployment as GET /berth/compose/deployments shows
// it: the record's desired state beside what runs.
type DeploymentStatus struct {
	Project string
	// Origin is berth (kept true by the supervisor) or compose (the
	// client's; berth records it).
	Origin string
	// Status is compose ls's summary: "running(3)", "exited(1), running(2)".
	Status      string
	WorkingDir  string          `json:",omitempty"`
	ConfigFiles []string        `json:",omitempty"`
	FileHash    string          `json:",omitempty"`
	Services    []ServiceStatus // by name
	Networks    []string        `json:",omitempty"`
	Volumes     []string        `json:",omitempty"`
	Created     time.Time       `json:",omitzero"`
	Updated     time.Time       `json:",omitzero"`
	LastDeploy  *DeployResult   `json:",omitempty"`
}

// ServiceStatus is one service: desired against running replicas.
type ServiceStatus struct {
	Name    string
	Image   string `json:",omitempty"`
	Desired int
	Running int
	// Health sums up the replicas with a healthcheck: "healthy",
	// "unhealthy", "starting", or "" when none has one.
	Health   string    `json:",omitempty"`
	Pin      *Pin      `json:",omitempty"`
	Job      *JobSpec  `json:",omitempty"`
	Problem  *Problem  `json:",omitempty"`
	Replicas []Replica `json:",omitempty"`
}

// StatusOf is the status of a deployment seen through its containers only,
// with no record (the Kubernetes backend keeps none: its cluster has the
// desired state).
func StatusOf(d Deployment) DeploymentStatus { return statusOf(nil, d) }

// statusOf puts a record (nil: none yet) and the project's containers side
// by side.
func statusOf(rec *DeploymentRecord, d Deployment) DeploymentStatus {
	st := DeploymentStatus{Project: d.Project, Origin: OriginCompose, WorkingDir: d.WorkingDir, ConfigFiles: d.ConfigFiles}
	if rec != nil {
		st.Project, st.Origin, st.WorkingDir, st.ConfigFiles = rec.Project, rec.Origin, rec.WorkingDir, rec.ConfigFiles
		st.FileHash, st.Networks, st.Volumes = rec.FileHash, rec.Networks, rec.Volumes
		st.Created, st.Updated, st.LastDeploy = rec.Created, rec.Updated, rec.LastDeploy
	}
	seen := map[string]*Service{}
	for i := range d.Services {
		seen[d.Services[i].Name] = &d.Services[i]
	}
	names := map[string]bool{}
	for n := range seen {
		names[n] = true
	}
	if rec != nil {
		for n := range rec.Services {
			names[n] = true
		}
	}
	states := map[container.ContainerState]int{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		ss := ServiceStatus{Name: name}
		if s := seen[name]; s != nil {
			ss.Replicas = s.Replicas
			ss.Desired = len(s.Replicas)
		}
		if rec != nil {
			ss.Desired = 0 // an orphan: it runs, but the deployment does not have it
			if sr := rec.Services[name]; sr != nil {
				ss.Image, ss.Desired, ss.Pin, ss.Job, ss.Problem = sr.Image, sr.Replicas, sr.Pin, sr.Job, sr.Problem
			}
		}
		var health []container.HealthStatus
		for _, r := range ss.Replicas {
			states[r.State]++
			if r.State == container.StateRunning {
				ss.Running++
			}
			if r.Health != "" {
				health = append(health, r.Health)
			}
			if ss.Image == "" {
				ss.Image = r.Image
			}
		}
		ss.Health = healthSummary(health)
		st.Services = append(st.Services, ss)
	}
	st.Status = stateSummary(states)
	return st
}

// healthSummary: unhealthy if any is, starting if any is, else healthy.
func healthSummary(hs []container.HealthStatus) string {
	switch {
	case len(hs) == 0:
		return ""
	case slices.Contains(hs, container.Unhealthy):
		return string(container.Unhealthy)
	case slices.Contains(hs, container.Starting):
		return string(container.Starting)
	}
	return string(container.Healthy)
}

// stateSummary is compose ls's STATUS: "exited(1), running(2)".
func stateSummary(states map[container.ContainerState]int) string {
	if len(states) == 0 {
		return "empty"
	}
	keys := slices.SortedFunc(maps.Keys(states), func(a, b container.ContainerState) int { return cmp.Compare(a, b) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s(%d)", k, states[k]))
	}
	return strings.Join(parts, ", ")
}
