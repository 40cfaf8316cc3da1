package build

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/builder"
	"github.com/berthd/berth/engine"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fake struct {
	opts    builder.Options
	context string
	err     error
	early   bool // fail before any output
}

func (f *fake) Build(ctx context.Context, r io.Reader, opts builder.Options, out builder.Output) (string, error) {
	b, _ := io.ReadAll(r)
	f.context, f.opts = string(b), opts
	if f.early {
		return "", f.err
	}
	out.Stream("Step 1/1 : FROM busybox\n")
	if f.err != nil {
		return "", f.err
	}
	out.Aux("sha256:abc")
	return "sha256:abc", nil
}

func serve(f *fake, target string) *httptest.ResponseRecorder {
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(f, &fakeCache{}))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", target, strings.NewReader("TAR")))
	return rec
}

func TestBuild(t *testing.T) {
	f := &fake{}
	rec := serve(f, `/v1.41/build?t=a:1&t=b&dockerfile=sub/Dockerfile&q=1&target=x&networkmode=default&buildargs={"A":"1","B":null}&labels={"l":"v"}&extrahosts=h:1.2.3.4&cachefrom=["c:1"]&nocache=1&platform=linux/amd64`)
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, is.Equal(rec.Body.String(), `{"stream":"sha256:abc\n"}`+"\n"), "quiet: the ID alone, as dockerd")
	assert.Check(t, is.Equal(f.context, "TAR"))
	assert.Check(t, is.DeepEqual(f.opts.Tags, []string{"a:1", "b"}))
	assert.Check(t, is.Equal(f.opts.Dockerfile, "sub/Dockerfile"))
	assert.Check(t, is.Equal(f.opts.Target, "x"))
	assert.Check(t, is.Equal(string(f.opts.HostConfig.NetworkMode), ""), "default is the daemon's default network")
	assert.Check(t, is.DeepEqual(f.opts.HostConfig.ExtraHosts, []string{"h:1.2.3.4"}))
	assert.Check(t, is.DeepEqual(f.opts.CacheFrom, []string{"c:1"}))
	assert.Check(t, f.opts.NoCache)
	assert.Check(t, f.opts.Remove && !f.opts.ForceRemove, "rm defaults to true")
	assert.Check(t, is.Equal(f.opts.Platform, "linux/amd64"))

	// not quiet: the messages as they come
	g := &fake{}
	rec = serve(g, "/build?rm=0")
	assert.Check(t, is.Equal(rec.Body.String(), `{"stream":"Step 1/1 : FROM busybox\n"}`+"\n"+`{"aux":{"ID":"sha256:abc"}}`+"\n"))
	assert.Check(t, !g.opts.Remove)
	rec = serve(g, "/build?rm=0&forcerm=1")
	assert.Check(t, g.opts.Remove && g.opts.ForceRemove, "forcerm implies rm")
	assert.Check(t, is.Equal(*f.opts.BuildArgs["A"], "1"))
	assert.Check(t, f.opts.BuildArgs["B"] == nil)
	assert.Check(t, is.DeepEqual(f.opts.Labels, map[string]string{"l": "v"}))
}

func TestBuildErrors(t *testing.T) {
	// a failed RUN, after the stream started: in the stream, with its code
	rec := serve(&fake{err: &builder.StepError{Msg: "The command 'x' returned a non-zero code: 3", Code: 3}}, "/build")
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, is.Contains(rec.Body.String(), `{"errorDetail":{"code":3,"message":"The command 'x' returned a non-zero code: 3"},"error":"The command 'x' returned a non-zero code: 3"}`))
	rec = serve(&fake{err: errors.New("boom")}, "/build")
	assert.Check(t, is.Contains(rec.Body.String(), `{"errorDetail":{"message":"boom"},"error":"boom"}`))

	// before any output: a status code
	rec = serve(&fake{early: true, err: errdefs.ErrInvalidArgument.WithMessage("Cannot locate specified Dockerfile: x")}, "/build")
	assert.Check(t, is.Equal(rec.Code, 400))
	rec = serve(&fake{}, "/build?buildargs=notjson-secret")
	assert.Check(t, is.Equal(rec.Code, 400))
	assert.Check(t, !strings.Contains(rec.Body.String(), "secret"), "the value of a build arg is never echoed")
	rec = serve(&fake{}, "/build?memory=lots")
	assert.Check(t, is.Equal(rec.Code, 400))

	// quiet and failing: what was held back, then the error
	rec = serve(&fake{err: errors.New("boom")}, "/build?q=1")
	assert.Check(t, is.Equal(rec.Body.String(), `{"stream":"Step 1/1 : FROM busybox\n"}`+"\n"+`{"errorDetail":{"message":"boom"},"error":"boom"}`+"\n"))
	rec = serve(&fake{early: true, err: errdefs.ErrInvalidArgument.WithMessage("bad")}, "/build?q=1")
	assert.Check(t, is.Equal(rec.Code, 400))
	rec = serve(&fake{}, "/build?remote=https://example.com/x.git")
	assert.Check(t, is.Equal(rec.Code, 501))

}

func TestQuietHoldsBoundedOutput(t *testing.T) {
	s := &stream{quiet: true}
	line := strings.Repeat("x", 1<<20) + "\n"
	for i := 0; i < 10; i++ {
		s.Stream(line)
	}
	s.Aux("sha256:abc")
	assert.Check(t, s.heldBytes < maxHeld+2*len(line))
	assert.Check(t, is.Len(s.held, 5), "3 lines, the truncation note (for the 4th), the aux")
}
