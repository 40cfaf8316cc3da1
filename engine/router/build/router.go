// Package build routes POST /build (the classic builder) and POST
// /build/prune (BuildKit's cache).
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/berthd/berth/builder"
	"github.com/berthd/berth/engine/httputil"
	"github.com/containerd/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
)

// Backend builds images (builder.Builder).
type Backend interface {
	Build(ctx context.Context, buildCtx io.Reader, opts builder.Options, out builder.Output) (string, error)
}

// Router serves the build endpoints.
type Router struct {
	b     Backend
	cache CacheBackend
}

// New returns the build router: b is the classic builder, cache BuildKit's
// build cache.
func New(b Backend, cache CacheBackend) *Router { return &Router{b: b, cache: cache} }

// Routes implements httputil.Router.
func (r *Router) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewPostRoute("/build", r.build),
		httputil.NewPostRoute("/build/prune", r.prune),
	}
}

// stream is the build's JSON stream, started at the first message so that
// errors before it get their status code, as with dockerd. With q=1 the
// messages are held back: the answer is the image ID alone, or all of
// them and the error when the build fails (dockerd's notVerboseBuffer).
type stream struct {
	w         http.ResponseWriter
	s         *httputil.JSONStream
	quiet     bool
	held      []any
	heldBytes int
}

// maxHeld bounds the output a quiet build holds back in memory: past it,
// the middle of the output is dropped (a step that prints without end
// cannot fill the daemon's memory).
const maxHeld = 4 << 20

func (s *stream) send(v any) {
	if s.quiet {
		if m, ok := v.(jsonstream.Message); ok && m.Stream != "" {
			if s.heldBytes > maxHeld {
				return
			}
			s.heldBytes += len(m.Stream)
			if s.heldBytes > maxHeld {
				v = jsonstream.Message{Stream: "[output truncated]\n"}
			}
		}
		s.held = append(s.held, v)
		return
	}
	s.write(v)
}

func (s *stream) write(v any) {
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

// fail ends the stream with err, or returns err for a status code when
// nothing was sent.
func (s *stream) fail(err error) error {
	for _, v := range s.held {
		s.write(v)
	}
	if s.s == nil {
		return err
	}
	msg := &jsonstream.Error{Message: err.Error()}
	var step *builder.StepError
	if errors.As(err, &step) {
		msg.Code = step.Code
	}
	s.write(struct {
		jsonstream.Message
		ErrorText string `json:"error,omitempty"`
	}{jsonstream.Message{Error: msg}, err.Error()})
	return nil
}

func (r *Router) build(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	if req.Form.Get("remote") != "" {
		return errdefs.ErrNotImplemented.WithMessage("berth's builder takes the build context in the request body only (no remote)")
	}
	opts, err := options(req)
	if err != nil {
		return err
	}
	out := &stream{w: w, quiet: httputil.BoolValue(req, "q")}
	id, err := r.b.Build(ctx, req.Body, opts, out)
	if err != nil {
		return out.fail(err)
	}
	if out.quiet {
		out.write(jsonstream.Message{Stream: id + "\n"})
	}
	return nil
}

// options reads POST /build's parameters as dockerd does: rm defaults to
// true, forcerm implies it.
func options(req *http.Request) (builder.Options, error) {
	f := req.Form
	opts := builder.Options{
		Dockerfile:  f.Get("dockerfile"),
		Tags:        f["t"],
		Pull:        httputil.BoolValue(req, "pull"),
		Target:      f.Get("target"),
		Platform:    f.Get("platform"),
		NoCache:     httputil.BoolValue(req, "nocache"),
		ForceRemove: httputil.BoolValue(req, "forcerm"),
		Remove:      f.Get("rm") == "" || httputil.BoolValue(req, "rm") || httputil.BoolValue(req, "forcerm"),
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(f.Get("networkmode")),
		ExtraHosts:  f["extrahosts"],
	}
	if hc.NetworkMode == "default" {
		hc.NetworkMode = ""
	}
	ints := map[string]*int64{
		"memory": &hc.Memory, "memswap": &hc.MemorySwap, "cpushares": &hc.CPUShares,
		"cpuperiod": &hc.CPUPeriod, "cpuquota": &hc.CPUQuota, "shmsize": &hc.ShmSize,
	}
	for key, dst := range ints {
		if v := f.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return opts, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid %s parameter: %s", key, v))
			}
			*dst = n
		}
	}
	hc.CpusetCpus, hc.CpusetMems, hc.CgroupParent = f.Get("cpusetcpus"), f.Get("cpusetmems"), f.Get("cgroupparent")
	opts.HostConfig = hc
	jsonParams := map[string]any{"buildargs": &opts.BuildArgs, "labels": &opts.Labels, "cachefrom": &opts.CacheFrom, "ulimits": &hc.Ulimits}
	for key, dst := range jsonParams {
		if v := f.Get(key); v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				// the error names the parameter, never its value (build args may be secrets)
				return opts, errdefs.ErrInvalidArgument.WithMessage("invalid " + key + " parameter: not a JSON value of the expected kind")
			}
		}
	}
	return opts, nil
}
