package compose

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
)

func (c *Router) getDeployments(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	list, err := c.backend.Deployments(ctx)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, list)
}

func (c *Router) getDeployment(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	d, err := c.backend.Deployment(ctx, vars["project"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, d)
}

func (c *Router) postScale(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req compose.ScaleRequest
	if err := httputil.ReadJSON(r, &req, false); err != nil {
		return err
	}
	res, err := c.backend.Scale(ctx, vars["project"], req)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, res)
}

func (c *Router) postPull(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req compose.UpRequest
	if err := httputil.ReadJSON(r, &req, false); err != nil {
		return err
	}
	res, err := c.backend.Pull(ctx, req)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, res)
}

// getLogs streams the merged log as JSON lines (compose.LogEntry).
func (c *Router) getLogs(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	req := compose.LogsRequest{Services: r.Form["service"], Follow: httputil.BoolValue(r, "follow"), Tail: -1}
	if t := r.Form.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tail: " + t)
		}
		req.Tail = n
	}
	if s := r.Form.Get("since"); s != "" {
		since, err := parseSince(s, time.Now())
		if err != nil {
			return err
		}
		req.Since = since
	}
	lines, err := c.backend.Logs(ctx, vars["project"], req)
	if err != nil {
		return err
	}
	out := httputil.NewJSONStream(w)
	for e := range lines {
		if err := out.Send(e); err != nil {
			return nil // the client went
		}
	}
	return nil
}

// parseSince reads a time as docker logs --since takes it: RFC 3339, Unix
// seconds (with a fraction), or a duration before now (10m).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage("invalid since: " + s)
}

func (c *Router) postRunJob(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	e, err := c.backend.RunJob(ctx, vars["project"], vars["service"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusCreated, e)
}

func (c *Router) getJobs(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	list, err := c.backend.Jobs(ctx, vars["project"], r.Form.Get("service"))
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, list)
}

func (c *Router) postCancelJob(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	e, err := c.backend.CancelJob(ctx, vars["project"], vars["id"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, e)
}
