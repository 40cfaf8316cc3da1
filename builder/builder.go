// Package builder is berth's classic image builder: POST /build, what
// `DOCKER_BUILDKIT=0 docker build`, compose's classic builder and docker-py's
// images.build use. It reads the Dockerfile with BuildKit's parser and runs
// each step the way dockerd's classic builder does: every step makes an
// image whose parent is the previous step's; RUN runs in a container of the
// image so far, COPY and ADD write into one, and both are committed as a
// new layer; the other instructions change only the config. Those images
// are the build cache: a step whose image an earlier build made from the
// same parent with the same run config (and, for COPY and ADD, the same
// sources) is that image again ("Using cache").
package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/moby/api/types/container"
)

const defaultDockerfile = "Dockerfile"

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
	// Commit makes a step's image of a container's changes.
	Commit(ctx context.Context, req registry.CommitRequest) (string, error)
	// Child makes a step's image that changes only the config.
	Child(ctx context.Context, req registry.ChildRequest) (string, error)
	// CachedStep is the image an earlier build made for a step, or "".
	CachedStep(ctx context.Context, q registry.CacheQuery) (string, error)
	Tag(ctx context.Context, ref, repo, tag string) error
	// Scratch is an image without layers, for FROM scratch.
	Scratch(ctx context.Context) (string, error)
}

// Builder builds images.
type Builder struct {
	ctrs   Containers
	images Images
	tmpDir string
	limit  registry.UploadLimit
}

// New returns a builder that unpacks build contexts under tmpDir (its own:
// emptied here), each within limit (its Dir is set to tmpDir).
func New(ctrs Containers, images Images, tmpDir string, limit registry.UploadLimit) (*Builder, error) {
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
	limit.Dir = tmpDir
	return &Builder{ctrs: ctrs, images: images, tmpDir: tmpDir, limit: limit}, nil
}

// Options are POST /build's parameters.
type Options struct {
	Dockerfile string // path in the context; default "Dockerfile"
	Tags       []string
	Pull       bool
	BuildArgs  map[string]*string
	Labels     map[string]string
	Target     string
	Platform   string
	// NoCache runs every step; CacheFrom are images whose history may
	// give steps (docker build --cache-from).
	NoCache   bool
	CacheFrom []string
	// Remove removes a step's container once the step succeeded;
	// ForceRemove also when it failed (dockerd's rm and forcerm).
	Remove, ForceRemove bool
	// HostConfig is the RUN steps' (network mode, extra hosts,
	// resources); nil is the defaults.
	HostConfig *container.HostConfig
}

// Output receives the build's progress, as the lines of dockerd's stream.
type Output interface {
	// Stream writes text (whole lines) to the client.
	Stream(text string)
	// Aux sends an image ID, as dockerd's {"aux":{"ID":...}}: one for
	// each stage built.
	Aux(id string)
}

// Build builds the Dockerfile of the build context (a tar, possibly
// compressed) and returns the new image's ID. Errors are in dockerd's
// words. The containers of the steps are removed as opts say, before
// Build returns.
func (b *Builder) Build(ctx context.Context, buildCtx io.Reader, opts Options, out Output) (string, error) {
	tags, err := parseTags(opts.Tags)
	if err != nil {
		return "", err
	}
	if err := checkPlatform(opts.Platform); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(b.tmpDir, "context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := b.unpackContext(buildCtx, dir); err != nil {
		return "", err
	}
	name := opts.Dockerfile
	if name == "" {
		name = defaultDockerfile
	}
	parsed, err := readDockerfile(dir, name)
	if err != nil {
		return "", err
	}
	stages, metaArgs, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if opts.Target != "" {
		last := stageIndex(stages, opts.Target)
		if last < 0 {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("target stage %q could not be found", opts.Target))
		}
		stages = stages[:last+1]
	}
	if len(stages) > 0 {
		addLabels(&stages[len(stages)-1], opts.Labels)
	}

	run := newBuild(b, opts, out, dir, stages)
	id, err := run.run(ctx, metaArgs)
	if err != nil {
		return "", err
	}
	out.Stream(fmt.Sprintf("Successfully built %s\n", shortID(id)))
	for _, t := range tags {
		if err := b.images.Tag(ctx, id, t.repo, t.tag); err != nil {
			return id, err
		}
		out.Stream(fmt.Sprintf("Successfully tagged %s\n", t.familiar))
	}
	return id, nil
}

type tagName struct{ repo, tag, familiar string }

// parseTags checks the t parameters before the build, as dockerd does.
func parseTags(tags []string) ([]tagName, error) {
	var out []tagName
	for _, t := range tags {
		if t == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format: %v", strings.TrimPrefix(err.Error(), "invalid reference format: ")))
		}
		if _, ok := named.(reference.Canonical); ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage("build tag cannot contain a digest")
		}
		named = reference.TagNameOnly(named)
		tagged := named.(reference.NamedTagged)
		out = append(out, tagName{repo: reference.FamiliarName(named), tag: tagged.Tag(), familiar: reference.FamiliarString(named)})
	}
	return out, nil
}

// addLabels adds the request's labels to the last stage as LABEL steps,
// sorted, as dockerd does.
func addLabels(s *instructions.Stage, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		s.AddCommand(instructions.NewLabelCommand(k, labels[k], true))
	}
}

func stageIndex(stages []instructions.Stage, name string) int {
	for i, s := range stages {
		if strings.EqualFold(s.Name, name) {
			return i
		}
	}
	return -1
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
