// Package builder is berth's classic image builder: POST /build, what
// `DOCKER_BUILDKIT=0 docker build`, compose's classic builder and docker-py's
// images.build use. It reads the Dockerfile with BuildKit's parser and runs
// each step the way dockerd's classic builder does: RUN in a container of the
// image so far, COPY and ADD into one, each committed as a new layer; the
// other instructions change the config. There is no build cache: every build
// runs every step.
package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

// Containers runs the steps (runtime.Service).
type Containers interface {
	Create(ctx context.Context, req runtime.CreateRequest) (container.CreateResponse, error)
	Start(ctx context.Context, name string) error
	Logs(ctx context.Context, name string, opts runtime.LogsOptions) (*runtime.LogStream, error)
	Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan runtime.WaitResult, error)
	Remove(ctx context.Context, name string, opts runtime.RemoveOptions) error
	ExtractToDir(ctx context.Context, name, path string, opts runtime.ExtractOptions, content io.Reader) error
	ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error)
	StatPath(ctx context.Context, name, path string) (*container.PathStat, error)
}

// Images resolves, pulls, commits and tags images (registry.Service).
type Images interface {
	Image(ctx context.Context, ref string) (*registry.Image, error)
	Pull(ctx context.Context, opts registry.PullOptions, start registry.StartFunc) error
	Commit(ctx context.Context, req registry.CommitRequest) (string, error)
	Tag(ctx context.Context, ref, repo, tag string) error
	Delete(ctx context.Context, ref string, force, prune bool) ([]image.DeleteResponse, error)
	// Scratch is an image without layers, for FROM scratch.
	Scratch(ctx context.Context) (string, error)
}

// Builder builds images.
type Builder struct {
	ctrs   Containers
	images Images
	tmpDir string
}

// New returns a builder that unpacks build contexts under tmpDir (its own:
// emptied here).
func New(ctrs Containers, images Images, tmpDir string) (*Builder, error) {
	if ctrs == nil || images == nil || tmpDir == "" {
		return nil, fmt.Errorf("builder: containers, images and a temporary directory are required")
	}
	// what a build cut by a crash left is removed: no build runs yet
	if err := os.RemoveAll(tmpDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, err
	}
	return &Builder{ctrs: ctrs, images: images, tmpDir: tmpDir}, nil
}

// Options are POST /build's parameters.
type Options struct {
	Dockerfile  string // path in the context; default "Dockerfile"
	Tags        []string
	Quiet       bool
	Pull        bool
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NetworkMode string
}

// Output receives the build's progress, as the lines of dockerd's stream.
type Output interface {
	// Stream writes text (whole lines) to the client.
	Stream(text string)
	// Aux sends the image ID, as dockerd's {"aux":{"ID":...}}.
	Aux(id string)
}

// Build builds the Dockerfile of the build context (a tar, possibly
// compressed) and returns the new image's ID. Errors are in dockerd's words;
// the containers a step used are removed, failed or not.
func (b *Builder) Build(ctx context.Context, buildCtx io.Reader, opts Options, out Output) (string, error) {
	dir, err := os.MkdirTemp(b.tmpDir, "context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := unpackContext(buildCtx, dir); err != nil {
		return "", err
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	df, err := openInContext(dir, name)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Cannot locate specified Dockerfile: %s", name))
	}
	parsed, err := parser.Parse(df)
	df.Close()
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	stages, metaArgs, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if len(stages) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("dockerfile contains no stages to build")
	}
	last := len(stages) - 1
	if opts.Target != "" {
		if last = stageIndex(stages, opts.Target); last < 0 {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to reach build target %s in Dockerfile", opts.Target))
		}
	}

	run := &build{b: b, opts: opts, out: out, contextDir: dir, stages: stages[:last+1], used: map[string]bool{}}
	run.total = len(metaArgs)
	for _, s := range run.stages {
		run.total += 1 + len(s.Commands)
	}
	if err := run.metaArgs(metaArgs); err != nil {
		return "", err
	}
	var id, keep string
	// There is no build cache to keep the steps' images for: all but the
	// result go (their layers stay, under the result), all of them when
	// the build fails.
	defer func() {
		for _, made := range run.made {
			if made != keep {
				_, _ = b.images.Delete(context.WithoutCancel(ctx), made, false, true)
			}
		}
	}()
	for i := range run.stages {
		if id, err = run.stage(ctx, i); err != nil {
			return "", err
		}
	}
	if len(opts.Labels) > 0 {
		if id, err = run.relabel(ctx, id, opts.Labels); err != nil {
			return "", err
		}
	}
	if unused := run.unusedArgs(); len(unused) > 0 {
		run.say("[Warning] One or more build-args %v were not consumed\n", unused)
	}
	keep = id
	run.out.Aux(id)
	if opts.Quiet {
		out.Stream(id + "\n")
	} else {
		run.say("Successfully built %s\n", shortID(id))
	}
	for _, t := range opts.Tags {
		repo, tag := splitTag(t)
		if err := b.images.Tag(ctx, id, repo, tag); err != nil {
			return id, err
		}
		run.say("Successfully tagged %s\n", t)
	}
	return id, nil
}

// openInContext opens a file of the context, refusing paths that leave it.
func openInContext(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, filepath.Clean("/"+name))
	return os.Open(p)
}

func stageIndex(stages []instructions.Stage, name string) int {
	for i, s := range stages {
		if strings.EqualFold(s.Name, name) {
			return i
		}
	}
	return -1
}

// splitTag splits "repo:tag" ("host:port/repo:tag" too); no tag is "".
func splitTag(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
