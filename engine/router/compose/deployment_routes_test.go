package compose

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type deployFake struct {
	fake
	scaleProject string
	scale        compose.ScaleRequest
	logs         compose.LogsRequest
	jobs         [3]string
}

func (f *deployFake) Deployment(_ context.Context, project string) (*compose.DeploymentStatus, error) {
	if project != "shop" {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	return &compose.DeploymentStatus{Project: "shop", Origin: compose.OriginBerth}, nil
}

func (f *deployFake) Deployments(context.Context) ([]compose.DeploymentStatus, error) {
	return []compose.DeploymentStatus{{Project: "shop"}}, nil
}

func (f *deployFake) Scale(_ context.Context, project string, req compose.ScaleRequest) (*compose.UpResult, error) {
	f.scaleProject, f.scale = project, req
	for _, n := range req.Services {
		if n < 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage("negative")
		}
	}
	return &compose.UpResult{Project: project}, nil
}

func (f *deployFake) Logs(_ context.Context, project string, req compose.LogsRequest) (<-chan compose.LogEntry, error) {
	f.logs = req
	ch := make(chan compose.LogEntry, 2)
	ch <- compose.LogEntry{Service: "worker", Number: 1, Line: "a"}
	ch <- compose.LogEntry{Service: "worker", Number: 2, Line: "b"}
	close(ch)
	return ch, nil
}

func (f *deployFake) RunJob(_ context.Context, project, service string) (*compose.JobExecution, error) {
	f.jobs[0] = project + "/" + service
	return &compose.JobExecution{ID: "abc", Project: project, Service: service}, nil
}

func (f *deployFake) Jobs(_ context.Context, project, service string) ([]*compose.JobExecution, error) {
	f.jobs[1] = project + "/" + service
	return []*compose.JobExecution{}, nil
}

func (f *deployFake) CancelJob(_ context.Context, project, id string) (*compose.JobExecution, error) {
	f.jobs[2] = project + "/" + id
	return nil, errdefs.ErrConflict.WithMessage("job execution abc is not running (failed)")
}

func TestDeploymentRoutes(t *testing.T) {
	f := &deployFake{}
	w := serveB(t, f, http.MethodGet, "/berth/compose/deployments/shop", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	w = serveB(t, f, http.MethodGet, "/v1.56/berth/compose/deployments/nope", "")
	assert.Check(t, is.Equal(w.Code, http.StatusNotFound))
	assert.Check(t, is.Contains(w.Body.String(), "No such deployment: nope"))
	w = serveB(t, f, http.MethodGet, "/berth/compose/deployments", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	assert.Check(t, is.Contains(w.Body.String(), `"Project":"shop"`))

	w = serveB(t, f, http.MethodPost, "/berth/compose/shop/scale", `{"Services":{"worker":3}}`)
	assert.Check(t, is.Equal(w.Code, http.StatusOK), w.Body.String())
	assert.Check(t, is.Equal(f.scaleProject, "shop"))
	assert.Check(t, is.DeepEqual(f.scale.Services, map[string]int{"worker": 3}))
	w = serveB(t, f, http.MethodPost, "/berth/compose/shop/scale", `{"Services":{"worker":-1}}`)
	assert.Check(t, is.Equal(w.Code, http.StatusBadRequest))
	w = serveB(t, f, http.MethodPost, "/berth/compose/shop/scale", `{"Services":{"worker":"x"}}`)
	assert.Check(t, is.Equal(w.Code, http.StatusBadRequest))

	w = serveB(t, f, http.MethodGet, "/berth/compose/shop/logs?service=worker&follow=1&tail=5&since=10m", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	assert.Assert(t, is.Len(lines, 2))
	var e compose.LogEntry
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &e))
	assert.Check(t, is.Equal(e.Prefix(), "worker-2"))
	assert.Check(t, is.DeepEqual(f.logs.Services, []string{"worker"}))
	assert.Check(t, f.logs.Follow)
	assert.Check(t, is.Equal(f.logs.Tail, 5))
	assert.Check(t, time.Since(f.logs.Since) > 9*time.Minute && time.Since(f.logs.Since) < 11*time.Minute)
	for _, bad := range []string{"tail=-2", "tail=x", "since=yesterday"} {
		w = serveB(t, f, http.MethodGet, "/berth/compose/shop/logs?"+bad, "")
		assert.Check(t, is.Equal(w.Code, http.StatusBadRequest), bad)
	}

	w = serveB(t, f, http.MethodPost, "/berth/compose/shop/jobs/migrate/run", "")
	assert.Check(t, is.Equal(w.Code, http.StatusCreated))
	assert.Check(t, is.Equal(f.jobs[0], "shop/migrate"))
	w = serveB(t, f, http.MethodGet, "/berth/compose/shop/jobs?service=migrate", "")
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	assert.Check(t, is.Equal(strings.TrimSpace(w.Body.String()), "[]"))
	assert.Check(t, is.Equal(f.jobs[1], "shop/migrate"))
	w = serveB(t, f, http.MethodPost, "/berth/compose/shop/executions/abc/cancel", "")
	assert.Check(t, is.Equal(w.Code, http.StatusConflict))
	assert.Check(t, is.Equal(f.jobs[2], "shop/abc"))
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"2026-01-02T09:00:00Z": now.Add(-time.Hour),
		"1767344400":           time.Unix(1767344400, 0),
		"1767344400.5":         time.Unix(1767344400, 5e8),
	} {
		got, err := parseSince(in, now)
		assert.NilError(t, err, in)
		assert.Check(t, got.Equal(want), "%s: %v", in, got)
	}
	_, err := parseSince("soon", now)
	assert.Check(t, errdefs.IsInvalidArgument(err))
}
