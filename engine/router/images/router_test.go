package images

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var _ Backend = (*registry.Service)(nil)

// fake is a hand-written Backend: each method records its input and
// answers what the test set.
type fake struct {
	err       error  // returned before the stream starts
	streamErr error  // returned after it started
	parent    string // what Parent answers
	got       map[string]any
}

func (f *fake) record(k string, v any) {
	if f.got == nil {
		f.got = map[string]any{}
	}
	f.got[k] = v
}

func (f *fake) Images(ctx context.Context, opts registry.ListOptions) ([]image.Summary, error) {
	f.record("list", opts)
	return []image.Summary{{ID: "sha256:x", RepoTags: []string{}, RepoDigests: []string{}, Containers: -1}}, f.err
}
func (f *fake) Inspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	f.record("inspect", ref)
	if f.err != nil {
		return nil, f.err
	}
	return &image.InspectResponse{ID: "sha256:x"}, nil
}
func (f *fake) Parent(ctx context.Context, ref string) (string, error) {
	return f.parent, nil
}
func (f *fake) History(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	return nil, f.err
}
func (f *fake) Tag(ctx context.Context, ref, repo, tag string) error {
	f.record("tag", ref+"|"+repo+"|"+tag)
	return f.err
}
func (f *fake) Delete(ctx context.Context, ref string, force, prune bool) ([]image.DeleteResponse, error) {
	f.record("delete", []any{ref, force, prune})
	return []image.DeleteResponse{{Untagged: ref}}, f.err
}
func (f *fake) Prune(ctx context.Context, fl filters.Args) (*image.PruneReport, error) {
	return &image.PruneReport{}, f.err
}
func (f *fake) stream(start registry.StartFunc) error {
	if f.err != nil {
		return f.err
	}
	_ = start().Send(jsonstream.Message{Status: "working"})
	return f.streamErr
}
func (f *fake) Pull(ctx context.Context, opts registry.PullOptions, start registry.StartFunc) error {
	f.record("pull", opts)
	return f.stream(start)
}
func (f *fake) Import(ctx context.Context, r io.Reader, opts registry.ImportOptions, start registry.StartFunc) error {
	f.record("import", opts)
	return f.stream(start)
}
func (f *fake) Push(ctx context.Context, opts registry.PushOptions, start registry.StartFunc) error {
	f.record("push", opts)
	return f.stream(start)
}
func (f *fake) Load(ctx context.Context, r io.Reader, quiet bool, start registry.StartFunc) error {
	f.record("quiet", quiet)
	return f.stream(start)
}
func (f *fake) Save(ctx context.Context, names []string, start func() io.Writer) error {
	f.record("save", names)
	if f.err != nil {
		return f.err
	}
	_, _ = start().Write([]byte("TAR"))
	return nil
}
func (f *fake) Login(ctx context.Context, auth mregistry.AuthConfig) (*mregistry.AuthResponse, error) {
	f.record("login", auth)
	if f.err != nil {
		return nil, f.err
	}
	return &mregistry.AuthResponse{Status: "Login Succeeded"}, nil
}

func (f *fake) DistributionInspect(ctx context.Context, ref string, auth *mregistry.AuthConfig) (*mregistry.DistributionInspect, error) {
	f.record("distribution", ref)
	if f.err != nil {
		return nil, f.err
	}
	return &mregistry.DistributionInspect{}, nil
}

func serve(t *testing.T, b Backend, method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	s := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(b))
	req := httptest.NewRequest(method, target, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	notFound := errdefs.ErrNotFound.WithMessage("No such image: nope")
	cases := []struct {
		name              string
		method, target    string
		err, streamErr    error
		status            int
		body, contentType string
	}{
		{name: "list", method: "GET", target: "/images/json", status: 200, body: `"Containers":-1`},
		{name: "list bad filters", method: "GET", target: "/images/json?filters=x", status: 400, body: "invalid filter"},
		{name: "inspect versioned", method: "GET", target: "/v1.41/images/busybox:latest/json", status: 200, body: `"Id":"sha256:x"`},
		{name: "inspect 404", method: "GET", target: "/images/nope/json", err: notFound, status: 404, body: `{"message":"No such image: nope"}`},
		{name: "inspect name with slashes", method: "GET", target: "/images/127.0.0.1:5000/a/b:1/json", status: 200},
		{name: "history 404", method: "GET", target: "/images/nope/history", err: notFound, status: 404},
		{name: "tag", method: "POST", target: "/images/busybox/tag?repo=x&tag=y", status: 201},
		{name: "tag conflict", method: "POST", target: "/images/busybox/tag?repo=x", err: errdefs.ErrInvalidArgument.WithMessage("bad"), status: 400},
		{name: "delete", method: "DELETE", target: "/images/busybox?force=1", status: 200, body: `[{"Untagged":"busybox"}]`},
		{name: "delete conflict", method: "DELETE", target: "/images/busybox", err: errdefs.ErrConflict.WithMessage("conflict: x"), status: 409, body: "conflict: x"},
		{name: "prune", method: "POST", target: "/images/prune", status: 200, body: `"SpaceReclaimed":0`},
		{name: "pull", method: "POST", target: "/images/create?fromImage=busybox&tag=1", status: 200, body: `{"status":"working"}`, contentType: "application/json"},
		{name: "pull error before stream", method: "POST", target: "/images/create?fromImage=nope", err: notFound, status: 404, body: `{"message":"No such image: nope"}`},
		{name: "pull error in stream", method: "POST", target: "/images/create?fromImage=busybox", streamErr: errors.New("boom"), status: 200, body: `{"status":"working"}` + "\n" + `{"errorDetail":{"message":"boom"},"error":"boom"}`},
		{name: "pull without image", method: "POST", target: "/images/create", status: 400, body: "fromImage"},
		{name: "import", method: "POST", target: "/images/create?fromSrc=-&repo=x", status: 200, body: `{"status":"working"}`},
		{name: "import from a URL", method: "POST", target: "/images/create?fromSrc=http://example.com/a.tar", status: 501, body: "not from a URL"},
		{name: "push", method: "POST", target: "/images/127.0.0.1:5000/a/push?tag=1", status: 200, body: "working"},
		{name: "load", method: "POST", target: "/images/load", status: 200, body: "working", contentType: "application/json"},
		{name: "load bad archive", method: "POST", target: "/images/load", err: errdefs.ErrInvalidArgument.WithMessage("invalid image archive"), status: 200, body: `{"errorDetail":{"message":"invalid image archive"},"error":"invalid image archive"}`, contentType: "application/json"},
		{name: "load bad archive not quiet", method: "POST", target: "/images/load?quiet=0", err: errdefs.ErrInvalidArgument.WithMessage("invalid image archive"), status: 200, body: `"error":"invalid image archive"`},
		{name: "save", method: "GET", target: "/images/get?names=a&names=b", status: 200, body: "TAR", contentType: "application/x-tar"},
		{name: "save one", method: "GET", target: "/images/busybox/get", status: 200, body: "TAR"},
		{name: "save 404", method: "GET", target: "/images/nope/get", err: notFound, status: 404},
		{name: "distribution", method: "GET", target: "/distribution/127.0.0.1:5000/a/b:1/json", status: 200, body: `"Descriptor"`},
		{name: "distribution 404", method: "GET", target: "/distribution/nope/json", err: notFound, status: 404},
		{name: "auth", method: "POST", target: "/auth", status: 200, body: "Login Succeeded"},
		{name: "auth refused", method: "POST", target: "/auth", err: errdefs.ErrUnauthenticated.WithMessage("login attempt failed"), status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &fake{err: tc.err, streamErr: tc.streamErr}
			var body io.Reader
			hdr := map[string]string{}
			if tc.target == "/auth" {
				body = strings.NewReader(`{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}`)
				hdr["Content-Type"] = "application/json"
			}
			rec := serve(t, b, tc.method, tc.target, body, hdr)
			assert.Check(t, is.Equal(rec.Code, tc.status), rec.Body.String())
			assert.Check(t, is.Contains(rec.Body.String(), tc.body))
			if tc.contentType != "" {
				assert.Check(t, is.Equal(rec.Header().Get("Content-Type"), tc.contentType))
			}
		})
	}
}

func TestRouteParams(t *testing.T) {
	b := &fake{}
	serve(t, b, "POST", "/images/load", nil, nil)
	assert.Check(t, is.Equal(b.got["quiet"], true)) // dockerd's default
	serve(t, b, "POST", "/images/load?quiet=0", nil, nil)
	assert.Check(t, is.Equal(b.got["quiet"], false))

	serve(t, b, "DELETE", "/images/a:1?force=true&noprune=1", nil, nil)
	assert.DeepEqual(t, b.got["delete"], []any{"a:1", true, false})

	serve(t, b, "POST", "/images/x/tag?repo=r&tag=t", nil, nil)
	assert.Check(t, is.Equal(b.got["tag"], "x|r|t"))

	// X-Registry-Auth: base64url JSON
	serve(t, b, "POST", "/images/create?fromImage=a&tag=b&platform=linux/amd64", nil,
		map[string]string{"X-Registry-Auth": "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InB-PyJ9"})
	opts := b.got["pull"].(registry.PullOptions)
	assert.Check(t, is.Equal(opts.FromImage, "a"))
	assert.Check(t, is.Equal(opts.Tag, "b"))
	assert.Check(t, is.Equal(opts.Platform, "linux/amd64"))
	assert.Assert(t, opts.Auth != nil)
	assert.Check(t, is.Equal(opts.Auth.Password, "p~?"))

	// an undecodable header counts as none, as in dockerd
	serve(t, b, "POST", "/images/create?fromImage=a", nil, map[string]string{"X-Registry-Auth": "%%%"})
	assert.Check(t, b.got["pull"].(registry.PullOptions).Auth == nil)

	serve(t, b, "GET", "/images/json?filter=busy*&all=1", nil, nil)
	lo := b.got["list"].(registry.ListOptions)
	assert.Check(t, lo.All)
	assert.DeepEqual(t, lo.Filters.Get("reference"), []string{"busy*"})

	serve(t, b, "GET", "/images/get?names=a&names=b", nil, nil)
	assert.DeepEqual(t, b.got["save"], []string{"a", "b"})

	rec := serve(t, b, "POST", "/auth", strings.NewReader("{bad"), map[string]string{"Content-Type": "application/json"})
	assert.Check(t, is.Equal(rec.Code, http.StatusBadRequest))
}

// TestInspectParent: Parent is there when the image has one; older API
// versions always see it (and the other legacy fields), as from dockerd.
func TestInspectParent(t *testing.T) {
	for _, tc := range []struct {
		version, parent string
		want, not       []string
	}{
		{version: "v1.56", parent: "sha256:p", want: []string{`"Parent":"sha256:p"`}},
		{version: "v1.56", not: []string{`"Parent"`, `"DockerVersion"`}},
		{version: "v1.51", want: []string{`"Parent":""`, `"DockerVersion":""`, `"Comment":""`, `"Author":""`}},
		{version: "v1.41", parent: "sha256:p", want: []string{`"Parent":"sha256:p"`, `"DockerVersion":""`, `"VirtualSize"`}},
	} {
		t.Run(tc.version+tc.parent, func(t *testing.T) {
			rec := serve(t, &fake{parent: tc.parent}, "GET", "/"+tc.version+"/images/busybox/json", nil, nil)
			assert.Check(t, is.Equal(rec.Code, 200))
			for _, w := range tc.want {
				assert.Check(t, is.Contains(rec.Body.String(), w))
			}
			for _, n := range tc.not {
				assert.Check(t, !strings.Contains(rec.Body.String(), n), rec.Body.String())
			}
		})
	}
}
