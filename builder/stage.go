package builder

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
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
	made       []string          // the images the steps made
}

// stageState is where a stage is: the image so far and its config, which
// may be ahead of the image (config-only steps are committed later).
type stageState struct {
	image     string
	cfg       *container.Config
	args      map[string]string // this stage's ARGs that have a value
	cmdSet    bool
	author    string
	dirty     bool   // cfg changed since image was made
	createdBy string // the history entry of the pending change
}

func (r *build) say(format string, a ...any) {
	if !r.opts.Quiet {
		r.out.Stream(fmt.Sprintf(format, a...))
	}
}

func (r *build) nextStep(text string) {
	r.step++
	r.say("Step %d/%d : %s\n", r.step, r.total, text)
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
					return errdefs.ErrInvalidArgument.WithMessage(err.Error())
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

// stage builds stages[i] and returns its image's ID.
func (r *build) stage(ctx context.Context, i int) (string, error) {
	s := r.stages[i]
	r.nextStep(s.SourceCode)
	lex := shell.NewLex('\\')
	base, err := lex.ProcessWordWithMatches(s.BaseName, shell.EnvsFromSlice(envOf(r.meta)))
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	img, err := r.baseImage(ctx, base.Result, i)
	if err != nil {
		return "", err
	}
	r.say(" ---> %s\n", shortID(img.ID))
	st := &stageState{image: img.ID, cfg: imagecfg.ContainerConfig(img.Config), args: map[string]string{}}
	if err := r.onBuild(ctx, st); err != nil {
		return "", err
	}
	for _, cmd := range s.Commands {
		r.nextStep(fmt.Sprint(cmd))
		if err := r.dispatch(ctx, st, cmd); err != nil {
			return "", err
		}
	}
	if st.dirty {
		if err := r.commitConfig(ctx, st); err != nil {
			return "", err
		}
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
		r.made = append(r.made, id) // removed with the steps' images
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
	st.dirty = true
	word := "triggers"
	if len(triggers) == 1 {
		word = "trigger"
	}
	r.say("# Executing %d build %s\n", len(triggers), word)
	for _, t := range triggers {
		parsed, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(parsed.AST.Children) != 1 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid ONBUILD trigger %q", t))
		}
		node := parsed.AST.Children[0]
		switch strings.ToUpper(node.Value) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(node.Value)))
		}
		cmd, err := instructions.ParseCommand(node)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if err := r.dispatch(ctx, st, cmd); err != nil {
			return err
		}
	}
	return nil
}

// env is what a step's words expand with: the config's env, then the
// stage's ARGs that no ENV overrides.
func (st *stageState) env() []string {
	env := slices.Clone(st.cfg.Env)
	for _, k := range slices.Sorted(maps.Keys(st.args)) {
		if !hasKey(env, k) {
			env = append(env, k+"="+st.args[k])
		}
	}
	return env
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
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			if v, ok := r.buildArg(kv.Key); ok {
				st.args[kv.Key] = v
			} else if kv.Value != nil {
				st.args[kv.Key] = *kv.Value
			} else if v, ok := r.meta[kv.Key]; ok {
				st.args[kv.Key] = v
			}
		}
		return nil
	case *instructions.RunCommand:
		return r.run(ctx, st, c)
	case *instructions.CopyCommand:
		return r.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod, text: c.String()})
	case *instructions.AddCommand:
		for _, src := range c.SourcePaths {
			if strings.Contains(src, "://") {
				return errdefs.ErrNotImplemented.WithMessage("ADD from a URL is not supported by berth's builder: " + src)
			}
		}
		return r.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, add: true, text: c.String()})
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
	default:
		if err := imagecfg.ApplyInstruction(st.cfg, cmd, &st.cmdSet); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	st.dirty = true
	st.createdBy = "/bin/sh -c #(nop) " + fmt.Sprint(cmd)
	return nil
}

// run is a RUN step: the command runs in a container of the image so far,
// whose changes become the next image.
func (r *build) run(ctx context.Context, st *stageState, c *instructions.RunCommand) error {
	argv := c.CmdLine
	if c.PrependShell {
		sh := st.cfg.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		argv = append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
	}
	cfg := &container.Config{
		Image: st.image, Cmd: argv, Entrypoint: []string{""}, Env: st.env(),
		User: st.cfg.User, WorkingDir: st.cfg.WorkingDir, Labels: map[string]string{},
	}
	id, err := r.container(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, id)
	r.say(" ---> Running in %s\n", shortID(id))
	code, err := r.runOutput(ctx, id)
	if err != nil {
		return err
	}
	if code != 0 {
		return &StepError{Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), code), Code: code}
	}
	createdBy := strings.Join(argv, " ")
	if len(st.args) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(st.args), strings.Join(argList(st.args), " "), createdBy)
	}
	return r.commit(ctx, st, id, createdBy)
}

// runOutput starts the container, streams what it writes and returns its
// exit code.
func (r *build) runOutput(ctx context.Context, id string) (int, error) {
	waitc, err := r.b.ctrs.Wait(ctx, id, container.WaitConditionNextExit)
	if err != nil {
		return 0, err
	}
	if err := r.b.ctrs.Start(ctx, id); err != nil {
		return 0, err
	}
	logs, err := r.b.ctrs.Logs(ctx, id, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1})
	if err != nil {
		return 0, err
	}
	for l := range logs.Lines {
		r.say("%s", l.Line)
	}
	select {
	case res := <-waitc:
		if res.Err != nil {
			return 0, res.Err
		}
		return res.ExitCode, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// container creates a step's container (not started) from cfg.Image.
func (r *build) container(ctx context.Context, cfg *container.Config) (string, error) {
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(r.opts.NetworkMode)}
	resp, err := r.b.ctrs.Create(ctx, runtime.CreateRequest{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// removeContainer removes a step's container; a second call for the same
// one is quiet.
func (r *build) removeContainer(ctx context.Context, id string) {
	if err := r.b.ctrs.Remove(context.WithoutCancel(ctx), id, runtime.RemoveOptions{Force: true, RemoveVolumes: true}); err == nil {
		r.say("Removing intermediate container %s\n", shortID(id))
	}
}

// commit makes the step's container the stage's next image.
func (r *build) commit(ctx context.Context, st *stageState, id, createdBy string) error {
	img, err := r.b.images.Commit(ctx, registry.CommitRequest{
		ContainerID: id, Config: imagecfg.ImageConfig(st.cfg), Author: st.author, CreatedBy: createdBy,
	})
	if err != nil {
		return err
	}
	r.made = append(r.made, img)
	st.image, st.dirty = img, false
	r.removeContainer(ctx, id) // before the new ID, as dockerd prints them
	r.say(" ---> %s\n", shortID(img))
	return nil
}

// commitConfig makes an image of the config changes made since the last
// layer (no new layer).
func (r *build) commitConfig(ctx context.Context, st *stageState) error {
	id, err := r.container(ctx, &container.Config{Image: st.image, Cmd: []string{"true"}, Entrypoint: []string{""}, Labels: map[string]string{}})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, id)
	return r.commit(ctx, st, id, st.createdBy)
}

// relabel adds the request's labels to the final image, as dockerd does.
func (r *build) relabel(ctx context.Context, id string, labels map[string]string) (string, error) {
	img, err := r.b.images.Image(ctx, id)
	if err != nil {
		return "", err
	}
	st := &stageState{image: id, cfg: imagecfg.ContainerConfig(img.Config)}
	if st.cfg.Labels == nil {
		st.cfg.Labels = map[string]string{}
	}
	for k, v := range labels {
		st.cfg.Labels[k] = v
	}
	st.createdBy = "/bin/sh -c #(nop) LABEL " + strings.Join(argList(labels), " ")
	if err := r.commitConfig(ctx, st); err != nil {
		return "", err
	}
	return st.image, nil
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
