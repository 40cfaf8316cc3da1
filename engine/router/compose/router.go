// Package compose routes berth's own deployment endpoints, beside the Engine
// API: the native compose path (`berth compose ...`), the deployment records
// and views, logs and jobs. They live under /berth/ so they can never
// collide with a Docker endpoint.
//
//	POST /berth/compose/up           body compose.UpRequest    -> 200 compose.UpResult
//	POST /berth/compose/pull         body compose.UpRequest    -> 200 compose.PullResult
//	POST /berth/compose/down?project=P[&volumes=1][&t=N]         -> 200 compose.UpResult
//	GET  /berth/compose/ps[?project=P]                           -> 200 []compose.Deployment
//	GET  /berth/compose/deployments                              -> 200 []compose.DeploymentStatus
//	GET  /berth/compose/deployments/{project}                    -> 200 compose.DeploymentStatus, 404
//	POST /berth/compose/{project}/scale body compose.ScaleRequest -> 200 compose.UpResult
//	GET  /berth/compose/{project}/logs?service=S&follow=1&tail=N&since=T -> 200 stream of compose.LogEntry
//	POST /berth/compose/{project}/jobs/{service}/run             -> 201 compose.JobExecution
//	GET  /berth/compose/{project}/jobs[?service=S]               -> 200 []compose.JobExecution
//	POST /berth/compose/{project}/executions/{id}/cancel         -> 200 compose.JobExecution
package compose

import "github.com/berthd/berth/engine/httputil"

// Router serves the deployment endpoints.
type Router struct {
	backend Backend
}

// New returns the deployment router.
func New(b Backend) *Router {
	return &Router{backend: b}
}

// Routes implements httputil.Router.
func (c *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewPostRoute("/berth/compose/up", c.postUp),
		httputil.NewPostRoute("/berth/compose/pull", c.postPull),
		httputil.NewPostRoute("/berth/compose/down", c.postDown),
		httputil.NewGetRoute("/berth/compose/ps", c.getPs),
		httputil.NewGetRoute("/berth/compose/deployments", c.getDeployments),
		httputil.NewGetRoute("/berth/compose/deployments/{project}", c.getDeployment),
		httputil.NewPostRoute("/berth/compose/{project}/scale", c.postScale),
		httputil.NewGetRoute("/berth/compose/{project}/logs", c.getLogs),
		httputil.NewPostRoute("/berth/compose/{project}/jobs/{service}/run", c.postRunJob),
		httputil.NewGetRoute("/berth/compose/{project}/jobs", c.getJobs),
		httputil.NewPostRoute("/berth/compose/{project}/executions/{id}/cancel", c.postCancelJob),
	}
}
