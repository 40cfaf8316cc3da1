package compose

import (
	"maps"
	"slices"
	"time"

	"github.com/berthd/berth/store"
	"github.com/compose-spec/compose-go/v2/types"
)

// Origins of a deployment record: who deployed the project, and so who
// keeps it true.
const (
	// OriginBerth: `berth compose up` deployed it; the supervisor recreates
	// what disappears, from the record and its pins.
	OriginBerth = "berth"
	// OriginCompose: the docker compose CLI (or another client) made it;
	// berth follows what the client does and never resurrects what the API
	// removed. The record still holds the pins and shows the deployment.
	OriginCompose = "compose"
)

// DeploymentRecord is a deployment as berthd keeps it (bbolt, table compose-deployments):
// the desired state that `berth compose up`, `scale` and the supervisor
// converge to, whatever its containers say at the moment.
type DeploymentRecord struct {
	Project     string
	Origin      string
	WorkingDir  string       `json:",omitempty"`
	ConfigFiles []string     `json:",omitempty"`
	EnvFiles    string       `json:",omitempty"`
	Files       []SourceFile `json:",omitempty"` // the compose files as deployed
	FileHash    string       `json:",omitempty"` // filesHash(Files)
	// Model is the loaded project (see model.go); empty for a project of
	// the compose CLI whose files berth could not load as the CLI did.
	Model    string                    `json:",omitempty"`
	Services map[string]*ServiceRecord // by service name
	Networks []string                  `json:",omitempty"` // engine names
	Volumes  []string                  `json:",omitempty"`
	Created  time.Time
	Updated  time.Time
	// LastDeploy is the last operation that changed containers (up, scale).
	LastDeploy *DeployResult `json:",omitempty"`
}

// ServiceRecord is one service's desired state.
type ServiceRecord struct {
	Image      string // as the file names it
	ConfigHash string `json:",omitempty"`
	// Replicas is the desired count: the file's scale, or what `berth
	// compose scale` set since (kept while the file's scale stays FileScale).
	Replicas  int
	FileScale int
	// Pin is the image the service was last deployed with.
	Pin *Pin     `json:",omitempty"`
	Job *JobSpec `json:",omitempty"`
	// LastTick is the schedule tick that ran last (scheduled jobs).
	LastTick time.Time `json:",omitzero"`
	// Problem is what the supervisor reports: a crash loop, a replica it
	// could not restore.
	Problem *Problem `json:",omitempty"`
}

// Pin is an image a service was deployed with: its ID (what its
// containers run, com.docker.compose.image) and, for a pulled image, the
// registry digest.
type Pin struct {
	ImageID    string
	RepoDigest string `json:",omitempty"` // repo@sha256:...
	Pinned     time.Time
}

// DeployResult is what a deploy did and how it ended.
type DeployResult struct {
	Action   string // up, scale
	Started  time.Time
	Finished time.Time `json:",omitzero"`
	Result   string    // in progress, succeeded, failed
	Error    string    `json:",omitempty"`
	// Drift lists the services recreated because their image moved.
	Drift []Drift `json:",omitempty"`
	// Restored lists the services deployed from their pin because their
	// image was gone and could not be pulled.
	Restored []string         `json:",omitempty"`
	Failures []ReplicaFailure `json:",omitempty"`
}

// Results of a deploy.
const (
	ResultInProgress = "in progress"
	ResultSucceeded  = "succeeded"
	ResultFailed     = "failed"
)

// Drift is a service whose image tag moved to another image.
type Drift struct {
	Service    string
	Image      string
	OldImageID string
	NewImageID string
	OldDigest  string `json:",omitempty"`
	NewDigest  string `json:",omitempty"`
}

// ReplicaFailure is a replica that failed to start: it exited (or kept
// restarting) within moments of its start.
type ReplicaFailure struct {
	Service   string
	Number    int
	Container string
	ExitCode  int
	Error     string   `json:",omitempty"`
	Logs      []string `json:",omitempty"` // its last lines
}

// Problem is something the supervisor found wrong with a service.
type Problem struct {
	Kind         string // crashloop, restore
	Container    string `json:",omitempty"`
	Message      string
	ExitCode     int      `json:",omitempty"`
	RestartCount int      `json:",omitempty"`
	Logs         []string `json:",omitempty"`
	Since        time.Time
}

// Problem kinds.
const (
	ProblemCrashLoop = "crashloop"
	ProblemRestore   = "restore"
)

// RecordStore keeps deployment records; *store.Table[DeploymentRecord] is one.
type RecordStore interface {
	// Get returns ErrNotFound for an unknown project, ErrDataLoss for a
	// record that does not decode.
	Get(project string) (*DeploymentRecord, error)
	Put(project string, r *DeploymentRecord) error
	Delete(project string) error
	List() (map[string]*DeploymentRecord, []store.Corrupt, error)
}

var _ RecordStore = (*store.Table[DeploymentRecord])(nil)

// desiredReplicas is each service's replica count for a deploy of p: the
// file's scale, except where the record holds a count of its own (from
// `berth compose scale`) and the file's scale is still what it was when
// that count was set. Jobs have no replicas.
func desiredReplicas(p *types.Project, jobs map[string]*JobSpec, old *DeploymentRecord) map[string]int {
	out := map[string]int{}
	for name, s := range p.Services {
		if jobs[name] != nil {
			out[name] = 0
			continue
		}
		n := s.GetScale()
		if old != nil {
			if prev := old.Services[name]; prev != nil && prev.Job == nil && prev.FileScale == n {
				n = prev.Replicas
			}
		}
		out[name] = n
	}
	return out
}

// projectNetworks and projectVolumes are the engine names of what the
// project declares.
func projectNetworks(p *types.Project) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(p.Networks)) {
		out = append(out, p.Networks[k].Name)
	}
	return out
}

func projectVolumes(p *types.Project) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(p.Volumes)) {
		out = append(out, p.Volumes[k].Name)
	}
	return out
}

// clone is a deep copy of the parts operations change.
func (r *DeploymentRecord) clone() *DeploymentRecord {
	c := *r
	c.Services = make(map[string]*ServiceRecord, len(r.Services))
	for k, v := range r.Services {
		sv := *v
		c.Services[k] = &sv
	}
	if r.LastDeploy != nil {
		ld := *r.LastDeploy
		c.LastDeploy = &ld
	}
	return &c
}
