package builder

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime/imagecfg"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/container"
)

// StepError is a RUN step that exited non-zero: dockerd reports the exit
// code with the message, and the CLI exits with it.
type StepError struct {
	Msg  string
	Code int
}

func (e *StepError) Error() string { return e.Msg }

// build is one run of Build.
type build struct {
	b          *Builder
	opts       Options
	out        Output
	contextDir string
	stages     []instructions.Stage
	results    []string // image ID of each stage built so far
	step       int
	total      int
	meta       map[string]string // ARGs before the first FROM
	used       map[string]bool   // build args some ARG consumed
	scratch    string            // the FROM scratch base, once asked for
	cache      prober
	internal   map[string]bool // containers only berth's means (COPY's), always removed
}

func newBuild(b *Builder, opts Options, out Output, dir string, stages []instructions.Stage) *build {
	r := &build{b: b, opts: opts, out: out, contextDir: dir, stages: stages, used: map[string]bool{}, internal: map[string]bool{}}
	r.cache = prober{off: opts.NoCache}
	for _, s := range stages {
		r.total += 1 + len(s.Commands)
	}
	return r
}

// stageState is where a stage is: the image so far and the run config
// the next step starts from (dockerd's dispatchState).
type stageState struct {
	image  string
	cfg    *container.Config
	args   map[string]string // this stage's ARGs that have a value
	cmdSet bool
	author string
}

func (r *build) say(format string, a ...any) {
	r.out.Stream(fmt.Sprintf(format, a...))
}

func (r *build) nextStep(text string) {
	r.step++
	r.say("Step %d/%d : %s\n", r.step, r.total, text)
}

// run builds the stages and returns the last one's image.
func (r *build) run(ctx context.Context, metaArgs []instructions.ArgCommand) (string, error) {
	r.total += len(metaArgs)
	if err := r.metaArgs(metaArgs); err != nil {
		return "", err
	}
	var id string
	for i := range r.stages {
		var err error
		if id, err = r.stage(ctx, i); err != nil {
			return "", err
		}
	}
	if id == "" || id == r.scratch {
		return "", errdefs.ErrInvalidArgument.WithMessage("No image was generated. Is your Dockerfile empty?")
	}
	if unused := r.unusedArgs(); len(unused) > 0 {
		r.say("[Warning] One or more build-args %v were not consumed\n", unused)
	}
	return id, nil
}

func (r *build) metaArgs(args []instructions.ArgCommand) error {
	r.meta = map[string]string{}
	lex := shell.NewLex('\\')
	for _, a := range args {
		r.nextStep(a.String())
		for _, kv := range a.Args {
			if v, ok := r.buildArg(kv.Key); ok {
				r.meta[kv.Key] = v
			} else if kv.Value != nil {
				res, err := lex.ProcessWordWithMatches(*kv.Value, shell.EnvsFromSlice(envOf(r.meta)))
				if err != nil {
					return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
				}
				r.meta[kv.Key] = res.Result
			}
		}
	}
	return nil
}

// buildArg is the value the request gives an ARG, if it gives one.
func (r *build) buildArg(key string) (string, bool) {
	v, ok := r.opts.BuildArgs[key]
	if !ok || v == nil {
		return "", false
	}
	r.used[key] = true
	return *v, true
}

func (r *build) unusedArgs() []string {
	var out []string
	for k := range r.opts.BuildArgs {
		if !r.used[k] && !predefinedArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// predefinedArgs are the build args every Dockerfile may use without an ARG.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// stage builds stages[i] and returns its image's ID, which is sent to the
// client (one aux message per stage, as dockerd).
func (r *build) stage(ctx context.Context, i int) (string, error) {
	s := r.stages[i]
	r.nextStep(s.SourceCode)
	r.cache.reset()
	lex := shell.NewLex('\\')
	base, err := lex.ProcessWordWithMatches(s.BaseName, shell.EnvsFromSlice(envOf(r.meta)))
	if err != nil {
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if base.Result == "" {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("base name (%s) should not be blank", s.BaseName))
	}
	if s.Platform != "" {
		p, err := lex.ProcessWordWithMatches(s.Platform, shell.EnvsFromSlice(envOf(r.meta)))
		if err != nil {
			return "", errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		if err := checkPlatform(p.Result); err != nil {
			return "", err
		}
	}
	img, err := r.baseImage(ctx, base.Result, i)
	if err != nil {
		return "", err
	}
	st := &stageState{image: img.ID, cfg: imagecfg.ContainerConfig(img.Config), args: map[string]string{}}
	if err := r.onBuild(ctx, st); err != nil {
		return "", err
	}
	r.say(" ---> %s\n", shortID(st.image))
	for _, cmd := range s.Commands {
		if err := ctx.Err(); err != nil {
			r.say("Build cancelled\n")
			return "", err
		}
		r.nextStep(fmt.Sprint(cmd))
		if err := r.dispatch(ctx, st, cmd); err != nil {
			return "", err
		}
		r.say(" ---> %s\n", shortID(st.image))
	}
	if st.image != r.scratch {
		r.out.Aux(st.image)
	}
	r.results = append(r.results, st.image)
	return st.image, nil
}

// baseImage resolves FROM: an earlier stage, or an image (pulled when it
// is not here, or always with pull=1).
func (r *build) baseImage(ctx context.Context, name string, i int) (*registry.Image, error) {
	if j := stageIndex(r.stages[:i], name); j >= 0 {
		return r.b.images.Image(ctx, r.results[j])
	}
	if strings.EqualFold(name, "scratch") {
		id, err := r.b.images.Scratch(ctx)
		if err != nil {
			return nil, err
		}
		r.scratch = id
		return r.b.images.Image(ctx, id)
	}
	if !r.opts.Pull {
		img, err := r.b.images.Image(ctx, name)
		if err == nil || !errdefs.IsNotFound(err) {
			return img, err
		}
	}
	err := r.b.images.Pull(ctx, registry.PullOptions{FromImage: name}, func() registry.Output { return discard{} })
	if err != nil {
		return nil, err
	}
	return r.b.images.Image(ctx, name)
}

type discard struct{}

func (discard) Send(any) error { return nil }

// onBuild runs the base image's ONBUILD triggers, right after FROM, as
// dockerd does; the new image does not inherit them.
func (r *build) onBuild(ctx context.Context, st *stageState) error {
	triggers := st.cfg.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	st.cfg.OnBuild = nil
	word := "triggers"
	if len(triggers) == 1 {
		word = "trigger"
	}
	r.say("# Executing %d build %s\n", len(triggers), word)
	for _, t := range triggers {
		parsed, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(parsed.AST.Children) != 1 {
			return errdefs.ErrInvalidArgument.WithMessage("onbuild trigger should be a single expression")
		}
		node := parsed.AST.Children[0]
		switch strings.ToUpper(node.Value) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(node.Value)))
		}
		cmd, err := instructions.ParseCommand(node)
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		if err := r.dispatch(ctx, st, cmd); err != nil {
			return err
		}
	}
	return nil
}

// buildEnv are the stage's ARGs that no ENV overrides, as KEY=value.
func (st *stageState) buildEnv() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(st.args)) {
		if !hasKey(st.cfg.Env, k) {
			out = append(out, k+"="+st.args[k])
		}
	}
	return out
}

// env is what a step's words expand with: the config's env, then the
// stage's ARGs that no ENV overrides.
func (st *stageState) env() []string {
	return append(slices.Clone(st.cfg.Env), st.buildEnv()...)
}

func (r *build) dispatch(ctx context.Context, st *stageState, cmd instructions.Command) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		lex := shell.NewLex('\\')
		env := shell.EnvsFromSlice(st.env())
		err := ex.Expand(func(word string) (string, error) {
			res, err := lex.ProcessWordWithMatches(word, env)
			return res.Result, err
		})
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		return r.argStep(ctx, st, c)
	case *instructions.RunCommand:
		return r.runStep(ctx, st, c)
	case *instructions.WorkdirCommand:
		return r.workdirStep(ctx, st, c)
	case *instructions.CopyCommand:
		return r.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod, name: "COPY"})
	case *instructions.AddCommand:
		for _, src := range c.SourcePaths {
			if strings.Contains(src, "://") {
				return errdefs.ErrNotImplemented.WithMessage("ADD from a URL is not supported by berth's builder: " + src)
			}
		}
		return r.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, add: true, name: "ADD"})
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
		return r.commitConfig(ctx, st, "MAINTAINER "+c.Maintainer)
	case *instructions.ExposeCommand:
		return r.exposeStep(ctx, st, c)
	}
	if err := imagecfg.ApplyInstruction(st.cfg, cmd, &st.cmdSet); err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	return r.commitConfig(ctx, st, nopComment(cmd, st.cfg))
}

// argStep declares ARGs: a value from the request wins over the default,
// and an ARG without either takes the value of a global ARG.
func (r *build) argStep(ctx context.Context, st *stageState, c *instructions.ArgCommand) error {
	var comment strings.Builder
	comment.WriteString("ARG ")
	for i, kv := range c.Args {
		if i > 0 {
			comment.WriteString(" ")
		}
		comment.WriteString(kv.Key)
		if kv.Value != nil {
			comment.WriteString("=" + *kv.Value)
		}
		if v, ok := r.buildArg(kv.Key); ok {
			st.args[kv.Key] = v
		} else if kv.Value != nil {
			st.args[kv.Key] = *kv.Value
		} else if v, ok := r.meta[kv.Key]; ok {
			st.args[kv.Key] = v
		}
	}
	return r.commitConfig(ctx, st, comment.String())
}

// nopComment is the history entry dockerd writes for a config step.
func nopComment(cmd instructions.Command, cfg *container.Config) string {
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		return fmt.Sprintf("CMD %q", cfg.Cmd)
	case *instructions.EntrypointCommand:
		return fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint)
	case *instructions.UserCommand:
		return "USER " + c.User
	case *instructions.VolumeCommand:
		return fmt.Sprintf("VOLUME %v", c.Volumes)
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + c.Signal
	case *instructions.ShellCommand:
		return fmt.Sprintf("SHELL %v", cfg.Shell)
	case *instructions.HealthCheckCommand:
		return fmt.Sprintf("HEALTHCHECK %+v", cfg.Healthcheck)
	case *instructions.OnbuildCommand:
		return "ONBUILD " + c.Expression
	case *instructions.EnvCommand:
		parts := []string{"ENV"}
		for _, e := range c.Env {
			parts = append(parts, e.String())
		}
		return strings.Join(parts, " ")
	case *instructions.LabelCommand:
		parts := []string{"LABEL"}
		for _, l := range c.Labels {
			parts = append(parts, l.String())
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(cmd)
}

// commitConfig makes the image of a config-only step (or finds it in the
// cache): the history entry is dockerd's "#(nop)" form.
func (r *build) commitConfig(ctx context.Context, st *stageState, comment string) error {
	probe := copyConfig(st.cfg)
	probe.Cmd = append(shellOf(st.cfg), "#(nop) ", comment)
	key := cacheKey(probe)
	if hit, err := r.probe(ctx, st, probe, key); err != nil || hit {
		return err
	}
	id, err := r.b.images.Child(ctx, registry.ChildRequest{
		Parent: st.image, Config: imagecfg.ImageConfig(st.cfg), Author: st.author,
		CreatedBy: strings.Join(probe.Cmd, " "), CacheKey: key,
	})
	if err != nil {
		return err
	}
	st.image = id
	return nil
}

func shellOf(cfg *container.Config) []string {
	if len(cfg.Shell) > 0 {
		return slices.Clone(cfg.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

func argList(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func envOf(m map[string]string) []string { return argList(m) }

func hasKey(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

func sortStrings(s []string) { sort.Strings(s) }
