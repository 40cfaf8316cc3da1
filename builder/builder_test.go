package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
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
	children []registry.ChildRequest
	probes   []registry.CacheQuery
	cache    map[string]string // parent|key -> image
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
	ch := make(chan runtime.LogLine, 2)
	ch <- runtime.LogLine{Stream: "stdout", Line: []byte("output of " + name[60:] + "\n")}
	ch <- runtime.LogLine{Stream: "stderr", Line: []byte("complaint\n")}
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
	id := imageID(fmt.Sprintf("commit%d", len(f.commits)))
	f.images[id] = req.Config
	f.remember(f.created[req.ContainerID].Image, req.CacheKey, id)
	return id, nil
}
func (f *fakeEngine) Child(ctx context.Context, req registry.ChildRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.children = append(f.children, req)
	id := imageID(fmt.Sprintf("child%d", len(f.children)))
	f.images[id] = req.Config
	f.remember(req.Parent, req.CacheKey, id)
	return id, nil
}
func (f *fakeEngine) remember(parent, key, id string) {
	if f.cache == nil {
		f.cache = map[string]string{}
	}
	f.cache[parent+"|"+key] = id
}
func (f *fakeEngine) CachedStep(ctx context.Context, q registry.CacheQuery) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes = append(f.probes, q)
	return f.cache[q.Parent+"|"+q.Key], nil
}
func (f *fakeEngine) Tag(ctx context.Context, ref, repo, tag string) error {
	f.tags = append(f.tags, ref+" "+repo+":"+tag)
	return nil
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
	b, err := New(f, f, t.TempDir(), registry.UploadLimit{Max: 1 << 20})
	assert.NilError(t, err)
	return b
}

func runBuild(t *testing.T, b *Builder, files map[string]string, opts Options) (string, string, error) {
	t.Helper()
	out := &recordOut{}
	id, err := b.Build(context.Background(), buildContext(t, files), opts, out)
	return id, out.text.String(), err
}

func TestBuildSteps(t *testing.T) {
	f := newFake()
	f.images[imageID("busybox")] = f.images["busybox"]
	b := newBuilder(t, f)
	msg := "from-request"
	id, text, err := runBuild(t, b, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG MSG=default\nENV A=1\nRUN echo $MSG\nLABEL x=y\nCMD [\"run\"]\n",
	}, Options{Tags: []string{"app:1"}, BuildArgs: map[string]*string{"MSG": &msg, "UNUSED": &msg}, Labels: map[string]string{"by": "test"}, Remove: true})
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
	assert.Check(t, is.Equal(run.Image, imageID("child2")), "RUN starts from the ENV step's image")

	// one image per step: ARG, ENV, LABEL, CMD and the request's label
	// change the config only; the RUN is a commit of its container
	assert.Assert(t, is.Len(f.commits, 1))
	assert.Check(t, is.Equal(f.commits[0].CreatedBy, "|1 MSG=from-request /bin/sh -c echo $MSG"))
	assert.Assert(t, is.Len(f.children, 5))
	assert.Check(t, is.Equal(f.children[1].CreatedBy, "/bin/sh -c #(nop)  ENV A=1"))
	assert.Check(t, is.Equal(f.children[1].Parent, imageID("child1")))
	last := f.children[4]
	assert.Check(t, is.Equal(last.CreatedBy, "/bin/sh -c #(nop)  LABEL by=test"))
	assert.Check(t, is.DeepEqual(last.Config.Cmd, []string{"run"}))
	assert.Check(t, is.DeepEqual(last.Config.Labels, map[string]string{"x": "y", "by": "test"}))
	assert.Check(t, is.DeepEqual(last.Config.Env, []string{"PATH=/bin", "A=1"}), "ARGs do not stay in the image")
	assert.Check(t, is.Equal(id, imageID("child5")))

	// the RUN's container is removed (rm), the result tagged
	assert.Check(t, is.Len(f.removed, len(f.created)))
	assert.Check(t, is.DeepEqual(f.tags, []string{imageID("child5") + " app:1"}))

	for _, want := range []string{
		"Step 1/8 : ARG BASE=busybox\n", "Step 2/8 : FROM $BASE\n", "Step 5/8 : RUN echo $MSG\n", "Step 8/8 : LABEL by=test\n",
		"output of " + fmt.Sprintf("%04d", 1) + "\n", "\x1b[91mcomplaint\n\x1b[0m",
		" ---> Removed intermediate container 000000000000\n",
		"[Warning] One or more build-args [UNUSED] were not consumed\n",
		"AUX " + id + "\n", "Successfully built child5\n", "Successfully tagged app:1\n",
	} {
		assert.Check(t, is.Contains(text, want))
	}
	assert.Check(t, !strings.Contains(text, "Using cache"))

	// the same build again: every step from the cache, the same image
	f.created, f.removed = map[string]*container.Config{}, nil
	id2, text, err := runBuild(t, b, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG MSG=default\nENV A=1\nRUN echo $MSG\nLABEL x=y\nCMD [\"run\"]\n",
	}, Options{Tags: []string{"app:1"}, BuildArgs: map[string]*string{"MSG": &msg}, Labels: map[string]string{"by": "test"}, Remove: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id2, id))
	assert.Check(t, is.Equal(strings.Count(text, " ---> Using cache\n"), 6), text)
	assert.Check(t, is.Len(f.created, 0), "nothing ran")

	// another build arg value: the RUN and what follows run again
	other := "other"
	id3, text, err := runBuild(t, b, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG MSG=default\nENV A=1\nRUN echo $MSG\nLABEL x=y\nCMD [\"run\"]\n",
	}, Options{BuildArgs: map[string]*string{"MSG": &other}})
	assert.NilError(t, err)
	assert.Check(t, id3 != id)
	// ARG and ENV do not see the value (as in dockerd), RUN does
	assert.Check(t, is.Equal(strings.Count(text, " ---> Using cache\n"), 2), text)

	// nocache: nothing is asked of the cache
	before := len(f.probes)
	_, text, err = runBuild(t, b, map[string]string{"Dockerfile": "FROM busybox\nENV A=1\n"}, Options{NoCache: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(f.probes, before))
	assert.Check(t, !strings.Contains(text, "Using cache"))
}

func TestBuildRemoveContainers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          Options
		okRemoved     bool // the successful RUN's container
		failedRemoved bool
	}{
		{name: "rm", opts: Options{Remove: true}, okRemoved: true},
		{name: "no rm", opts: Options{}},
		{name: "forcerm", opts: Options{Remove: true, ForceRemove: true}, okRemoved: true, failedRemoved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.exitCode["exit 3"] = 3
			_, _, err := runBuild(t, newBuilder(t, f), map[string]string{"Dockerfile": "FROM busybox\nRUN touch /x\nRUN exit 3\n"}, tc.opts)
			var step *StepError
			assert.Assert(t, errors.As(err, &step), "%v", err)
			assert.Check(t, is.Equal(step.Code, 3))
			assert.Check(t, is.Equal(step.Msg, "The command '/bin/sh -c exit 3' returned a non-zero code: 3"))
			removed := map[string]bool{}
			for _, id := range f.removed {
				removed[id] = true
			}
			ok, failed := fmt.Sprintf("%064d", 1), fmt.Sprintf("%064d", 2)
			assert.Check(t, is.Equal(removed[ok], tc.okRemoved))
			assert.Check(t, is.Equal(removed[failed], tc.failedRemoved))
		})
	}
}

func TestBuildFailures(t *testing.T) {
	for dockerfile, msg := range map[string]string{
		"FROM busybox AS a\n":                         `target stage "nope" could not be found`,
		"FROM busybox\nCOPY x /x\n":                   "COPY failed: file not found in build context",
		"FROM busybox\nADD http://example.com/x /x\n": "ADD from a URL is not supported",
		"NOTANINSTRUCTION x\n":                        "unknown instruction",
		"":                                            "the Dockerfile (Dockerfile) cannot be empty",
		"# only a comment\n":                          "failed to parse Dockerfile: file with no instructions",
		"ARG A=1\n":                                   "No image was generated. Is your Dockerfile empty?",
		"FROM scratch\n":                              "No image was generated. Is your Dockerfile empty?",
		"FROM busybox\nEXPOSE 80/xyz\n":               "invalid proto: xyz",
		"FROM busybox\nRUN --mount=type=cache,target=/x true\n": "the --mount option requires BuildKit",
	} {
		opts := Options{}
		if strings.Contains(dockerfile, "AS a") {
			opts.Target = "nope"
		}
		_, _, err := runBuild(t, newBuilder(t, newFake()), map[string]string{"Dockerfile": dockerfile}, opts)
		assert.Check(t, is.ErrorContains(err, msg), "%q", dockerfile)
	}
	for _, opts := range []Options{{Dockerfile: "other/Dockerfile"}, {Platform: "not/a/platform/at/all"}, {Tags: []string{"UPPER:1"}}, {Tags: []string{"app@sha256:" + strings.Repeat("a", 64)}}} {
		_, _, err := runBuild(t, newBuilder(t, newFake()), map[string]string{"Dockerfile": "FROM busybox\n"}, opts)
		assert.Check(t, errdefs.IsInvalidArgument(err), "%+v: %v", opts, err)
	}
	_, _, err := runBuild(t, newBuilder(t, newFake()), map[string]string{"Dockerfile": "FROM busybox\n"}, Options{Dockerfile: "other/Dockerfile"})
	assert.Check(t, is.ErrorContains(err, "Cannot locate specified Dockerfile: other/Dockerfile"))
	_, _, err = runBuild(t, newBuilder(t, newFake()), map[string]string{"Dockerfile": "FROM busybox\n"}, Options{Platform: "linux/s390x"})
	assert.Check(t, is.ErrorContains(err, "not linux/s390x"))
}

func TestBuildStagesAndScratch(t *testing.T) {
	f := newFake()
	b := newBuilder(t, f)
	out := &recordOut{}
	// a lone Dockerfile as the context (docker build - < Dockerfile)
	id, err := b.Build(context.Background(), strings.NewReader(
		"FROM busybox AS first\nONBUILD RUN x\nRUN echo hi > /greeting\nFROM scratch\nCOPY --from=first /greeting /copied\n"), Options{}, out)
	assert.NilError(t, err)
	// one aux message per stage, the last one the result
	assert.Check(t, is.Equal(strings.Count(out.text.String(), "AUX "), 2))
	assert.Check(t, strings.HasSuffix(strings.Split(out.text.String(), "Successfully built")[0], "AUX "+id+"\n"))
	assert.Check(t, is.Len(f.commits, 2))
	// the COPY's container is made from the scratch image
	var fromScratch bool
	for _, c := range f.created {
		fromScratch = fromScratch || c.Image == imageID("scratch")
	}
	assert.Check(t, fromScratch)
}

func TestBuildExpose(t *testing.T) {
	f := newFake()
	_, _, err := runBuild(t, newBuilder(t, f), map[string]string{"Dockerfile": "FROM busybox\nENV P=9000\nEXPOSE 8000-8002 $P/udp 80:81\n"}, Options{})
	assert.NilError(t, err)
	got := f.children[len(f.children)-1].Config.ExposedPorts
	assert.Check(t, is.DeepEqual(got, map[string]struct{}{"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}, "9000/udp": {}, "81/tcp": {}}))
}

func TestBuildContextLimit(t *testing.T) {
	f := newFake()
	b := newBuilder(t, f)
	_, _, err := runBuild(t, b, map[string]string{"Dockerfile": "FROM busybox\n", "big": strings.Repeat("x", 2<<20)}, Options{})
	assert.Check(t, is.ErrorContains(err, "build context is larger than the daemon's limit"))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	left, _ := os.ReadDir(b.tmpDir)
	assert.Check(t, is.Len(left, 0), "nothing half-written stays")
}
