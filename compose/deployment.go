package compose

import (
	"cmp"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// Deployment is one compose project as berth sees it: the services and
// replicas that carry its labels.
type Deployment struct {
	Project     string
	WorkingDir  string   // from the project.working_dir label of its containers
	ConfigFiles []string // from the project.config_files label
	Services    []Service
}

// Service is one service of a deployment.
type Service struct {
	Name     string
	Replicas []Replica // the service's own containers, by number
	OneOffs  []Replica // containers of `compose run` for this service
}

// Replica is one container of a service.
type Replica struct {
	Number      int // the container-number label; 0 for one-offs
	ContainerID string
	Name        string // without "/"
	State       container.ContainerState
	Health      container.HealthStatus // "" when the container has no healthcheck
	Image       string
	ImageID     string
	ConfigHash  string
	Ports       []container.PortSummary
	Created     int64
}

// View groups containers into deployments: pure, so the API, the CLI and the
// tests see the same thing. Containers without compose labels are left out.
// Deployments, services and replicas come out sorted (project, service, number).
func View(containers []container.Summary) []Deployment {
	type svcKey struct{ project, service string }
	deps := map[string]*Deployment{}
	svcs := map[svcKey]*Service{}
	for _, c := range containers {
		k, ok := KeyOf(c.Labels)
		if !ok {
			continue
		}
		d := deps[k.Project]
		if d == nil {
			d = &Deployment{Project: k.Project}
			deps[k.Project] = d
		}
		if wd := c.Labels[LabelWorkingDir]; wd != "" && d.WorkingDir == "" {
			d.WorkingDir = wd
		}
		if cf := c.Labels[LabelConfigFiles]; cf != "" && d.ConfigFiles == nil {
			d.ConfigFiles = strings.Split(cf, ",")
		}
		s := svcs[svcKey{k.Project, k.Service}]
		if s == nil {
			s = &Service{Name: k.Service}
			svcs[svcKey{k.Project, k.Service}] = s
		}
		r := replicaOf(c, k)
		if k.OneOff {
			s.OneOffs = append(s.OneOffs, r)
		} else {
			s.Replicas = append(s.Replicas, r)
		}
	}
	for k, s := range svcs {
		sortReplicas(s.Replicas)
		sortReplicas(s.OneOffs)
		deps[k.project].Services = append(deps[k.project].Services, *s)
	}
	out := make([]Deployment, 0, len(deps))
	for _, d := range deps {
		slices.SortFunc(d.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Deployment) int { return cmp.Compare(a.Project, b.Project) })
	return out
}

func replicaOf(c container.Summary, k ContainerKey) Replica {
	r := Replica{
		ContainerID: c.ID,
		State:       c.State,
		Image:       c.Image,
		ImageID:     c.ImageID,
		ConfigHash:  c.Labels[LabelConfigHash],
		Ports:       c.Ports,
		Created:     c.Created,
	}
	if !k.OneOff {
		r.Number = k.Number
	}
	if len(c.Names) > 0 {
		r.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	if c.Health != nil && c.Health.Status != container.NoHealthcheck {
		r.Health = c.Health.Status
	}
	return r
}

// sortReplicas orders by number, then creation time, then ID: during a
// recreate two containers can briefly share a number.
func sortReplicas(rs []Replica) {
	slices.SortFunc(rs, func(a, b Replica) int {
		return cmp.Or(cmp.Compare(a.Number, b.Number), cmp.Compare(a.Created, b.Created), cmp.Compare(a.ContainerID, b.ContainerID))
	})
}

// Find returns the named deployment of a view.
func Find(view []Deployment, project string) (Deployment, bool) {
	for _, d := range view {
		if d.Project == project {
			return d, true
		}
	}
	return Deployment{}, false
}
