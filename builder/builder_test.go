package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakeEngine is both the containers and the images a build uses; it records
// what the build asked for.
type fakeEngine struct {
	mu       sync.Mutex
	n        int
	created  map[string]*container.Config
	removed  []string
	commits  []registry.CommitRequest
	deleted  []string
	tags     []string
	pulled   []string
	exitCode map[string]int // by the command's last word
	images   map[string]dockerspec.DockerOCIImageConfig
}

func newFake() *fakeEngine {
	return &fakeEngine{
		created: map[string]*container.Config{}, exitCode: map[string]int{},
		images: map[string]dockerspec.DockerOCIImageConfig{
			"busybox": {ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}},
		},
	}
}

func (f *fakeEngine) Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("%064d", f.n)
	f.created[id] = req.Config
	return container.CreateResponse{ID: id}, nil
}
func (f *fakeEngine) Start(ctx context.Context, name string) error { return nil }
func (f *fakeEngine) Logs(ctx context.Context, name string, opts runtime.LogsOptions) (*runtime.LogStream, error) {
	ch := make(chan runtime.LogLine, 1)
	ch <- runtime.LogLine{Stream: "stdout", Line: []byte("output of " + name[60:] + "\n")}
	close(ch)
	return &runtime.LogStream{Lines: ch, Cancel: func() {}}, nil
}
func (f *fakeEngine) Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan runtime.WaitResult, error) {
	f.mu.Lock()
	cmd := f.created[name].Cmd
	code := f.exitCode[cmd[len(cmd)-1]]
	f.mu.Unlock()
	ch := make(chan runtime.WaitResult, 1)
	ch <- runtime.WaitResult{ExitCode: code}
	return ch, nil
}
func (f *fakeEngine) Remove(ctx context.Context, name string, opts runtime.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.removed {
		if r == name {
			return errdefs.ErrNotFound.WithMessage("No such container: " + name)
		}
	}
	f.removed = append(f.removed, name)
	return nil
}
func (f *fakeEngine) ExtractToDir(ctx context.Context, name, path string, opts runtime.ExtractOptions, content io.Reader) error {
	_, err := io.Copy(io.Discard, content)
	return err
}
func (f *fakeEngine) ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "greeting", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi\n"))
	_ = tw.Close()
	return io.NopCloser(&buf), &container.PathStat{Name: "greeting"}, nil
}
func (f *fakeEngine) StatPath(ctx context.Context, name, path string) (*container.PathStat, error) {
	return nil, errdefs.ErrNotFound.WithMessage("no such path")
}
func (f *fakeEngine) Image(ctx context.Context, ref string) (*registry.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, ok := f.images[ref]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return &registry.Image{ID: imageID(ref), Config: cfg}, nil
}
func (f *fakeEngine) Pull(ctx context.Context, opts registry.PullOptions, start registry.StartFunc) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulled = append(f.pulled, opts.FromImage)
	f.images[opts.FromImage] = dockerspec.DockerOCIImageConfig{}
	return nil
}
func (f *fakeEngine) Commit(ctx context.Context, req registry.CommitRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits = append(f.commits, req)
	id := fmt.Sprintf("commit%d", len(f.commits))
	f.images[imageID(id)] = req.Config
	return imageID(id), nil
}
func (f *fakeEngine) Tag(ctx context.Context, ref, repo, tag string) error {
	f.tags = append(f.tags, ref+" "+repo+":"+tag)
	return nil
}
func (f *fakeEngine) Delete(ctx context.Context, ref string, force, prune bool) ([]image.DeleteResponse, error) {
	f.deleted = append(f.deleted, ref)
	return nil, nil
}
func (f *fakeEngine) Scratch(ctx context.Context) (string, error) {
	f.images[imageID("scratch")] = dockerspec.DockerOCIImageConfig{}
	return imageID("scratch"), nil
}

// imageID is the fake's ID of an image; an ID resolves to itself.
func imageID(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	return "sha256:" + ref
}

type recordOut struct{ text strings.Builder }

func (o *recordOut) Stream(s string) { o.text.WriteString(s) }
func (o *recordOut) Aux(id string)   { o.text.WriteString("AUX " + id + "\n") }

func buildContext(t *testing.T, files map[string]string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, _ = tw.Write([]byte(body))
	}
	assert.NilError(t, tw.Close())
	return &buf
}

func newBuilder(t *testing.T, f *fakeEngine) *Builder {
	t.Helper()
	b, err := New(f, f, t.TempDir())
	assert.NilError(t, err)
	return b
}

func TestBuildSteps(t *testing.T) {
	f := newFake()
	f.images[imageID("busybox")] = f.images["busybox"]
	b := newBuilder(t, f)
	out := &recordOut{}
	msg := "from-request"
	id, err := b.Build(context.Background(), buildContext(t, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG MSG=default\nENV A=1\nRUN echo $MSG\nLABEL x=y\nCMD [\"run\"]\n",
	}), Options{Tags: []string{"app:1"}, BuildArgs: map[string]*string{"MSG": &msg, "UNUSED": &msg}, Labels: map[string]string{"by": "test"}}, out)
	assert.NilError(t, err)

	// the RUN ran with the build arg in its env, under the shell
	var run *container.Config
	for _, c := range f.created {
		if len(c.Cmd) == 3 && c.Cmd[2] == "echo $MSG" {
			run = c
		}
	}
	assert.Assert(t, run != nil, "no RUN container: %v", f.created)
	assert.Check(t, is.DeepEqual(run.Cmd, []string{"/bin/sh", "-c", "echo $MSG"}))
	assert.Check(t, is.DeepEqual(run.Env, []string{"PATH=/bin", "A=1", "MSG=from-request"}))
	assert.Check(t, is.Equal(run.Image, imageID("busybox")))

	// RUN, the config steps after it, the request's labels: three commits
	assert.Assert(t, is.Len(f.commits, 3))
	assert.Check(t, is.Equal(f.commits[0].CreatedBy, "|1 MSG=from-request /bin/sh -c echo $MSG"))
	last := f.commits[2].Config
	assert.Check(t, is.DeepEqual(last.Cmd, []string{"run"}))
	assert.Check(t, is.DeepEqual(last.Labels, map[string]string{"x": "y", "by": "test"}))
	assert.Check(t, is.DeepEqual(last.Env, []string{"PATH=/bin", "A=1"}), "ARGs do not stay in the image")
	assert.Check(t, is.Equal(id, imageID("commit3")))

	// every step container removed, the intermediate images deleted
	assert.Check(t, is.Len(f.removed, len(f.created)))
	assert.Check(t, is.DeepEqual(f.deleted, []string{imageID("commit1"), imageID("commit2")}))
	assert.Check(t, is.DeepEqual(f.tags, []string{imageID("commit3") + " app:1"}))

	text := out.text.String()
	for _, want := range []string{
		"Step 1/7 : ARG BASE=busybox\n", "Step 2/7 : FROM $BASE\n", "Step 5/7 : RUN echo $MSG\n",
		"output of " + fmt.Sprintf("%04d", 1) + "\n", "[Warning] One or more build-args [UNUSED] were not consumed\n",
		"AUX " + id + "\n", "Successfully built commit3\n", "Successfully tagged app:1\n",
	} {
		assert.Check(t, is.Contains(text, want))
	}
}

func TestBuildFailures(t *testing.T) {
	f := newFake()
	f.exitCode["exit 3"] = 3
	b := newBuilder(t, f)
	_, err := b.Build(context.Background(), buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN touch /x\nRUN exit 3\n",
	}), Options{}, &recordOut{})
	var step *StepError
	assert.Assert(t, errorsAs(err, &step), "%v", err)
	assert.Check(t, is.Equal(step.Code, 3))
	assert.Check(t, is.Equal(step.Msg, "The command '/bin/sh -c exit 3' returned a non-zero code: 3"))
	assert.Check(t, is.Len(f.removed, len(f.created)), "the failed step's container is removed too")
	assert.Check(t, is.DeepEqual(f.deleted, []string{imageID("commit1")}), "a failed build keeps no image")

	for dockerfile, msg := range map[string]string{
		"FROM busybox AS a\n":                         "failed to reach build target nope in Dockerfile",
		"FROM busybox\nCOPY x /x\n":                   "COPY failed: file not found in build context",
		"FROM busybox\nADD http://example.com/x /x\n": "ADD from a URL is not supported",
		"NOTANINSTRUCTION x\n":                        "unknown instruction",
	} {
		opts := Options{}
		if strings.Contains(dockerfile, "AS a") {
			opts.Target = "nope"
		}
		_, err := newBuilder(t, newFake()).Build(context.Background(), buildContext(t, map[string]string{"Dockerfile": dockerfile}), opts, &recordOut{})
		assert.Check(t, is.ErrorContains(err, msg), dockerfile)
	}
	_, err = newBuilder(t, newFake()).Build(context.Background(), buildContext(t, map[string]string{"Dockerfile": "FROM busybox\n"}), Options{Dockerfile: "other/Dockerfile"}, &recordOut{})
	assert.Check(t, is.ErrorContains(err, "Cannot locate specified Dockerfile: other/Dockerfile"))
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func TestBuildStagesAndScratch(t *testing.T) {
	f := newFake()
	b := newBuilder(t, f)
	out := &recordOut{}
	// a lone Dockerfile as the context (docker build - < Dockerfile)
	id, err := b.Build(context.Background(), strings.NewReader(
		"FROM busybox AS first\nRUN echo hi > /greeting\nFROM scratch\nCOPY --from=first /greeting /copied\n"), Options{Quiet: true}, out)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(out.text.String(), "AUX "+id+"\n"+id+"\n"), "quiet: only the ID")
	assert.Check(t, is.Len(f.commits, 2))
	// the COPY's container is made from the scratch image
	var fromScratch bool
	for _, c := range f.created {
		fromScratch = fromScratch || c.Image == imageID("scratch")
	}
	assert.Check(t, fromScratch)
	assert.Check(t, is.Contains(f.deleted, imageID("scratch")))
	assert.Check(t, is.Contains(f.deleted, imageID("commit1")), "the first stage's image goes too")
}

func errorsAs(err error, target **StepError) bool { return errors.As(err, target) }
