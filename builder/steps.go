package builder

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/runtime/imagecfg"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// prober is dockerd's image prober: after the first miss of a stage the
// cache is not asked again until the next stage, and nocache turns it off.
type prober struct {
	off, busted bool
}

func (p *prober) reset() { p.busted = false }

// cacheKey renders a step's run config as dockerd's cache compares it:
// the container-specific fields left out, empty and absent alike.
func cacheKey(cfg *container.Config) string {
	c := copyConfig(cfg)
	c.Image, c.Hostname, c.Domainname = "", "", ""
	if len(c.Env) == 0 {
		c.Env = nil
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	if len(c.Volumes) == 0 {
		c.Volumes = nil
	}
	if len(c.ExposedPorts) == 0 {
		c.ExposedPorts = nil
	}
	if len(c.OnBuild) == 0 {
		c.OnBuild = nil
	}
	if len(c.Shell) == 0 {
		c.Shell = nil
	}
	if len(c.Entrypoint) == 0 {
		c.Entrypoint = nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// probe asks the cache for the step; a hit moves the stage to the cached
// image and says so, as dockerd does.
func (r *build) probe(ctx context.Context, st *stageState, probe *container.Config, key string) (bool, error) {
	if r.cache.off || r.cache.busted {
		return false, nil
	}
	id, err := r.b.images.CachedStep(ctx, registry.CacheQuery{
		Parent: st.image, Key: key, CreatedBy: strings.Join(probe.Cmd, " "),
		Config: imagecfg.ImageConfig(st.cfg), Sources: r.opts.CacheFrom,
	})
	if err != nil {
		return false, err
	}
	if id == "" {
		r.cache.busted = true
		return false, nil
	}
	r.say(" ---> Using cache\n")
	st.image = id
	return true, nil
}

func copyConfig(c *container.Config) *container.Config {
	out := *c
	out.Cmd = slices.Clone(c.Cmd)
	out.Env = slices.Clone(c.Env)
	out.Entrypoint = slices.Clone(c.Entrypoint)
	out.OnBuild = slices.Clone(c.OnBuild)
	out.Shell = slices.Clone(c.Shell)
	out.Volumes = maps.Clone(c.Volumes)
	out.ExposedPorts = maps.Clone(c.ExposedPorts)
	out.Labels = maps.Clone(c.Labels)
	return &out
}

// runStep is a RUN step: the command runs in a container of the image so
// far, whose changes become the next image. Its cache key and history
// entry carry the build args in effect ("|N K=v ... cmd"), as dockerd's.
func (r *build) runStep(ctx context.Context, st *stageState, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the --%s option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled", c.FlagsUsed[0]))
	}
	argv := c.CmdLine
	if c.PrependShell {
		argv = append(shellOf(st.cfg), strings.Join(c.CmdLine, " "))
	}
	buildEnv := st.buildEnv()
	saveCmd := argv
	if len(buildEnv) > 0 {
		saveCmd = append([]string{fmt.Sprintf("|%d", len(buildEnv))}, append(buildEnv, argv...)...)
	}
	probe := copyConfig(st.cfg)
	probe.Cmd = saveCmd
	probe.ArgsEscaped = false
	if len(saveCmd) > 0 {
		probe.Entrypoint = nil
	}
	key := cacheKey(probe)
	if hit, err := r.probe(ctx, st, probe, key); err != nil || hit {
		return err
	}
	cfg := copyConfig(st.cfg)
	cfg.Image, cfg.Cmd, cfg.Entrypoint = st.image, argv, []string{""}
	cfg.Env = append(slices.Clone(st.cfg.Env), buildEnv...)
	cfg.Env = append(cfg.Env, r.proxyEnv(cfg.Env)...)
	cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	cfg.Labels = map[string]string{}
	id, err := r.container(ctx, cfg, runStep)
	if err != nil {
		return err
	}
	code, err := r.runOutput(ctx, id)
	if err == nil && code != 0 {
		err = &StepError{Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), code), Code: code}
	}
	if err != nil {
		r.finishStep(ctx, id, false)
		return err
	}
	return r.commitContainer(ctx, st, id, probe, key)
}

// proxyEnv are the proxy build args the request gives: RUN gets them
// without an ARG, and they stay out of the image and the cache key.
func (r *build) proxyEnv(env []string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(predefinedArgs)) {
		if v := r.opts.BuildArgs[k]; v != nil && !hasKey(env, k) {
			out = append(out, k+"="+*v)
		}
	}
	return out
}

// runOutput starts the container, streams what it writes (stderr in
// dockerd's red) and returns its exit code.
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
		if l.Stream == "stderr" {
			r.say("\x1b[91m%s\x1b[0m", l.Line)
		} else {
			r.say("%s", l.Line)
		}
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

// stepKind is what a step's container is for.
type stepKind int

const (
	runStep     stepKind = iota // RUN: the image's volumes mounted, as dockerd
	workdirStep                 // WORKDIR: a container dockerd shows too
	copyStep                    // COPY/ADD: dockerd writes the layer directly; the container is berth's means, never shown or kept
)

// container creates a step's container (not started) from cfg.Image with
// the request's host config. Steps that only write files (COPY, WORKDIR)
// do not mount the image's volumes, so what they write is in the layer.
func (r *build) container(ctx context.Context, cfg *container.Config, kind stepKind) (string, error) {
	hc := &container.HostConfig{}
	if r.opts.HostConfig != nil {
		hc = copyHostConfig(r.opts.HostConfig)
	}
	hc.LogConfig = container.LogConfig{Type: "json-file"}
	if kind == copyStep {
		hc = &container.HostConfig{NetworkMode: "none", LogConfig: hc.LogConfig}
	}
	resp, err := r.b.ctrs.Create(ctx, runtime.CreateRequest{Config: cfg, HostConfig: hc, NoImageVolumes: kind != runStep})
	if err != nil {
		return "", err
	}
	if kind == copyStep {
		r.internal[resp.ID] = true
		return resp.ID, nil
	}
	for _, w := range resp.Warnings {
		r.say(" ---> [Warning] %s\n", w)
	}
	r.say(" ---> Running in %s\n", shortID(resp.ID))
	return resp.ID, nil
}

func copyHostConfig(hc *container.HostConfig) *container.HostConfig {
	out := *hc
	out.ExtraHosts = slices.Clone(hc.ExtraHosts)
	return &out
}

// finishStep removes a step's container as dockerd's rm and forcerm say:
// always with forcerm, after a successful step with rm.
func (r *build) finishStep(ctx context.Context, id string, ok bool) {
	if r.internal[id] {
		delete(r.internal, id)
		_ = r.b.ctrs.Remove(context.WithoutCancel(ctx), id, runtime.RemoveOptions{Force: true, RemoveVolumes: true})
		return
	}
	// a cancelled build's step goes too, as dockerd removes it
	if !r.opts.ForceRemove && !(r.opts.Remove && ok) && ctx.Err() == nil {
		return
	}
	err := r.b.ctrs.Remove(context.WithoutCancel(ctx), id, runtime.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil:
		r.say(" ---> Removed intermediate container %s\n", shortID(id))
	case !errdefs.IsNotFound(err):
		r.say("Removing intermediate container %s: %v\n", shortID(id), err)
	}
}

// commitContainer makes the step's container the stage's next image,
// keyed for the cache by probe's run config.
func (r *build) commitContainer(ctx context.Context, st *stageState, id string, probe *container.Config, key string) error {
	img, err := r.b.images.Commit(ctx, registry.CommitRequest{
		ContainerID: id, Config: imagecfg.ImageConfig(st.cfg), Author: st.author,
		CreatedBy: strings.Join(probe.Cmd, " "), CacheKey: key,
	})
	r.finishStep(ctx, id, err == nil)
	if err != nil {
		return err
	}
	st.image = img
	return nil
}

// workdirStep sets the working directory and makes it in the image when
// it is not there, as dockerd does (one step, cached like the others).
func (r *build) workdirStep(ctx context.Context, st *stageState, c *instructions.WorkdirCommand) error {
	dir := c.Path
	if !path.IsAbs(dir) {
		dir = path.Join("/", st.cfg.WorkingDir, dir)
	}
	st.cfg.WorkingDir = path.Clean(dir)
	probe := copyConfig(st.cfg)
	probe.Cmd = append(shellOf(st.cfg), "#(nop) WORKDIR "+st.cfg.WorkingDir)
	key := cacheKey(probe)
	if hit, err := r.probe(ctx, st, probe, key); err != nil || hit {
		return err
	}
	cfg := copyConfig(probe)
	cfg.Image, cfg.Labels = st.image, map[string]string{}
	id, err := r.container(ctx, cfg, workdirStep)
	if err != nil {
		return err
	}
	if err := r.mkdir(ctx, id, st.cfg.WorkingDir); err != nil {
		r.finishStep(ctx, id, false)
		return err
	}
	return r.commitContainer(ctx, st, id, probe, key)
}

// mkdir makes dir (0755, root's) in the container when it is missing.
func (r *build) mkdir(ctx context.Context, id, dir string) error {
	if dir == "/" {
		return nil
	}
	if _, err := r.b.ctrs.StatPath(ctx, id, dir); err == nil || !errdefs.IsNotFound(err) {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(dir, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	err := r.b.ctrs.ExtractToDir(ctx, id, "/", runtime.ExtractOptions{}, pr)
	pr.CloseWithError(errors.New("mkdir ended"))
	return err
}

// exposeStep is EXPOSE: each word may expand to several ports, and a
// range ("8000-8002") exposes each port of it, as dockerd does.
func (r *build) exposeStep(ctx context.Context, st *stageState, c *instructions.ExposeCommand) error {
	lex := shell.NewLex('\\')
	var ports []string
	for _, p := range c.Ports {
		words, err := lex.ProcessWords(p, shell.EnvsFromSlice(st.env()))
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		ports = append(ports, words...)
	}
	exposed, err := parseExpose(ports)
	if err != nil {
		return err
	}
	if st.cfg.ExposedPorts == nil {
		st.cfg.ExposedPorts = network.PortSet{}
	}
	for _, p := range exposed {
		st.cfg.ExposedPorts[p] = struct{}{}
	}
	return r.commitConfig(ctx, st, "EXPOSE "+strings.Join(ports, " "))
}

// parseExpose reads EXPOSE's port specs ([[ip:]host:]port[-port][/proto])
// into the container ports they expose.
func parseExpose(specs []string) ([]network.Port, error) {
	var out []network.Port
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		containerPort := parts[len(parts)-1]
		num, proto, _ := strings.Cut(containerPort, "/")
		if num == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("no port specified: %s<empty>", spec))
		}
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid proto: " + proto)
		}
		pr, err := network.ParsePortRange(num + "/" + proto)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid containerPort: " + num)
		}
		for p := range pr.All() {
			out = append(out, p)
		}
	}
	return out, nil
}
