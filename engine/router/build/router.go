// Package build routes POST /build (the classic builder) and POST
// /build/prune.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/berthd/berth/builder"
	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
)

// Backend builds images (builder.Builder).
type Backend interface {
	Build(ctx context.Context, buildCtx io.Reader, opts builder.Options, out builder.Output) (string, error)
}

// Router serves the build endpoints.
type Router struct {
	b Backend
}

// New returns the build router.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputil.Router.
func (r *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewPostRoute("/build", r.build),
		httputil.NewPostRoute("/build/prune", r.prune),
	}
}

// stream is the build's JSON stream, started at the first message so that
// errors before it get their status code, as with dockerd.
type stream struct {
	w http.ResponseWriter
	s *httputil.JSONStream
}

func (s *stream) send(v any) {
	if s.s == nil {
		s.s = httputil.NewJSONStream(s.w)
	}
	_ = s.s.Send(v)
}

func (s *stream) Stream(text string) { s.send(jsonstream.Message{Stream: text}) }

func (s *stream) Aux(id string) {
	b, _ := json.Marshal(buildtypes.Result{ID: id})
	raw := json.RawMessage(b)
	s.send(jsonstream.Message{Aux: &raw})
}

func (r *Router) build(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	if req.Form.Get("remote") != "" {
		return errdefs.ErrNotImplemented.WithMessage("berth's builder takes the build context in the request body only (no remote)")
	}
	opts := builder.Options{
		Dockerfile:  req.Form.Get("dockerfile"),
		Tags:        req.Form["t"],
		Quiet:       httputil.BoolValue(req, "q"),
		Pull:        httputil.BoolValue(req, "pull"),
		Target:      req.Form.Get("target"),
		NetworkMode: req.Form.Get("networkmode"),
	}
	if opts.NetworkMode == "default" {
		opts.NetworkMode = ""
	}
	for key, dst := range map[string]any{"buildargs": &opts.BuildArgs, "labels": &opts.Labels} {
		if v := req.Form.Get(key); v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return errdefs.ErrInvalidArgument.WithMessage("invalid " + key + " parameter: " + err.Error())
			}
		}
	}
	out := &stream{w: w}
	_, err := r.b.Build(ctx, req.Body, opts, out)
	if err == nil {
		return nil
	}
	if out.s == nil {
		return err
	}
	msg := &jsonstream.Error{Message: err.Error()}
	var step *builder.StepError
	if errors.As(err, &step) {
		msg.Code = step.Code
	}
	out.send(struct {
		jsonstream.Message
		ErrorText string `json:"error,omitempty"`
	}{jsonstream.Message{Error: msg}, err.Error()})
	return nil
}

// prune reports an empty cache pruned: the classic builder keeps no cache.
func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	return httputil.WriteJSON(w, http.StatusOK, buildtypes.CachePruneReport{})
}
