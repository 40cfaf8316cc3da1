package compose

import (
	"fmt"
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
)

// ExtensionKey is berth's compose extension on a service. Being an x-
// field it keeps the file valid for docker compose, which ignores it:
//
//	services:
//	  migrate:
//	    x-berth: {job: true}            # run to completion on demand (berth compose run-job)
//	  report:
//	    x-berth:
//	      schedule: "*/5 * * * *"        # a job run on a cron schedule (5 fields, or 6 with seconds, or @every 1m)
//	      overlap: skip                  # skip (default): no run while one is running; allow
//	      history: 10                    # executions kept (default 10)
const ExtensionKey = "x-berth"

// Overlap policies of a scheduled job.
const (
	OverlapSkip  = "skip"
	OverlapAllow = "allow"
)

const defaultJobHistory = 10

// JobSpec is a service's x-berth section: nil for an ordinary service.
type JobSpec struct {
	Schedule string `json:",omitempty"`
	Overlap  string `json:",omitempty"`
	History  int    `json:",omitempty"`
}

// parseJobSpec reads and checks a service's x-berth section. A job is not
// deployed by up (no replicas); its executions are one-off containers.
func parseJobSpec(s types.ServiceConfig) (*JobSpec, error) {
	raw, ok := s.Extensions[ExtensionKey]
	if !ok || raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, invalidf("service %q: %s must be a mapping", s.Name, ExtensionKey)
	}
	bad := func(key string, v any) error {
		return invalidf("service %q: %s.%s: invalid value %v", s.Name, ExtensionKey, key, v)
	}
	spec := &JobSpec{Overlap: OverlapSkip, History: defaultJobHistory}
	job := false
	for _, key := range slices.Sorted(maps.Keys(m)) {
		v := m[key]
		switch key {
		case "job":
			b, ok := v.(bool)
			if !ok {
				return nil, bad(key, v)
			}
			job = b
		case "schedule":
			str, ok := v.(string)
			if !ok || str == "" {
				return nil, bad(key, v)
			}
			if _, err := ParseSchedule(str); err != nil {
				return nil, invalidf("service %q: %s.schedule: %v", s.Name, ExtensionKey, err)
			}
			spec.Schedule, job = str, true
		case "overlap":
			str, _ := v.(string)
			if str != OverlapSkip && str != OverlapAllow {
				return nil, invalidf("service %q: %s.overlap must be %q or %q, not %v", s.Name, ExtensionKey, OverlapSkip, OverlapAllow, v)
			}
			spec.Overlap = str
		case "history":
			n, ok := v.(int)
			if !ok || n < 1 {
				return nil, bad(key, v)
			}
			spec.History = n
		default:
			return nil, invalidf("service %q: %s: unknown key %q (job, schedule, overlap, history)", s.Name, ExtensionKey, key)
		}
	}
	if !job {
		if _, has := m["job"]; has && len(m) == 1 {
			return nil, nil // job: false
		}
		return nil, invalidf("service %q: %s sets overlap or history but neither job: true nor a schedule", s.Name, ExtensionKey)
	}
	if s.Scale != nil && *s.Scale > 1 || s.Deploy != nil && s.Deploy.Replicas != nil && *s.Deploy.Replicas > 1 {
		return nil, invalidf("service %q: a job has no replicas; remove scale/deploy.replicas", s.Name)
	}
	return spec, nil
}

// jobSpecs reads every service's x-berth section.
func jobSpecs(p *types.Project) (map[string]*JobSpec, error) {
	out := map[string]*JobSpec{}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		spec, err := parseJobSpec(p.Services[name])
		if err != nil {
			return nil, err
		}
		if spec != nil {
			out[name] = spec
		}
	}
	return out, nil
}

func (j *JobSpec) String() string {
	if j.Schedule == "" {
		return "job"
	}
	return fmt.Sprintf("job, schedule %q", j.Schedule)
}
