package compose

import (
	"maps"

	"github.com/moby/moby/api/types/events"
)

// DeploymentEventType is the type of deployment events on GET /events. The
// actor is the project; its attributes carry the compose project label, so
// `docker events --filter type=deployment --filter
// label=com.docker.compose.project=shop` follows one deployment.
const DeploymentEventType events.Type = "deployment"

// Deployment event actions.
const (
	ActionDeploy    events.Action = "deploy"    // up finished (result=succeeded|failed)
	ActionScale     events.Action = "scale"     // service=N replicas
	ActionDrift     events.Action = "drift"     // a service's image moved (old, new)
	ActionRestore   events.Action = "restore"   // a replica recreated, or an image taken, from the record and its pin
	ActionCrashLoop events.Action = "crashloop" // a replica keeps exiting
	ActionDown      events.Action = "down"      // the deployment is gone
	ActionHandover  events.Action = "handover"  // a client took over a berth-deployed project
	ActionJob       events.Action = "job"       // a job execution started or ended
)

// event publishes a deployment event.
func (m *Manager) event(project string, action events.Action, attrs map[string]string) {
	a := map[string]string{"name": project, LabelProject: project}
	for k, v := range maps.All(attrs) {
		if v != "" {
			a[k] = v
		}
	}
	m.d.Events.Publish(events.Message{Type: DeploymentEventType, Action: action, Actor: events.Actor{ID: project, Attributes: a}})
}
