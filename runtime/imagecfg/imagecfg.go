// Package imagecfg builds the run config of an image made by docker commit:
// the --change Dockerfile instructions applied to a container config (parsed
// with BuildKit's Dockerfile front end, as dockerd does), and that config in
// an image's terms.
package imagecfg

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Apply applies Dockerfile instructions (docker commit --change) to cfg.
// Only the instructions that change an image's config are allowed, as in
// dockerd; anything else is ErrInvalidArgument in its words.
func Apply(cfg *container.Config, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	lex := shell.NewLex(res.EscapeToken)
	cmdSet := false
	for _, node := range res.AST.Children {
		name := strings.ToLower(node.Value)
		switch name {
		case "cmd", "entrypoint", "env", "expose", "label", "onbuild", "stopsignal", "user", "volume", "workdir", "healthcheck", "shell":
		default:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not a valid change command", name))
		}
		cmd, err := instructions.ParseCommand(node)
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			err := ex.Expand(func(word string) (string, error) {
				res, err := lex.ProcessWordWithMatches(word, shell.EnvsFromSlice(cfg.Env))
				return res.Result, err
			})
			if err != nil {
				return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
			}
		}
		if err := ApplyInstruction(cfg, cmd, &cmdSet); err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
	}
	return nil
}

// ApplyInstruction applies one parsed (and expanded) instruction that
// changes an image's config; others are left alone. cmdSet tracks whether a
// CMD came before, which an ENTRYPOINT would otherwise reset.
func ApplyInstruction(cfg *container.Config, cmd instructions.Command, cmdSet *bool) error {
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = withShell(cfg, c.ShellDependantCmdLine)
		*cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = withShell(cfg, c.ShellDependantCmdLine)
		if !*cmdSet {
			cfg.Cmd = nil // as in a build, an ENTRYPOINT resets the CMD set before it
		}
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			setEnv(cfg, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for _, p := range c.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			port, err := network.ParsePort(p)
			if err != nil {
				return err
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		dir := c.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &container.HealthConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.ShellCommand:
		cfg.Shell = c.Shell
	}
	return nil
}

// withShell turns a shell-form command line into the shell's argv.
func withShell(cfg *container.Config, cl instructions.ShellDependantCmdLine) []string {
	if !cl.PrependShell {
		return cl.CmdLine
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), sh...), strings.Join(cl.CmdLine, " "))
}

func setEnv(cfg *container.Config, key, value string) {
	kv := key + "=" + value
	for i, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			cfg.Env[i] = kv
			return
		}
	}
	cfg.Env = append(cfg.Env, kv)
}

// ContainerConfig is an image's config as a container config, the
// inverse of ImageConfig.
func ContainerConfig(ic dockerspec.DockerOCIImageConfig) *container.Config {
	c := &container.Config{
		User: ic.User, Env: slices.Clone(ic.Env), Entrypoint: slices.Clone(ic.Entrypoint), Cmd: slices.Clone(ic.Cmd),
		WorkingDir: ic.WorkingDir, Labels: maps.Clone(ic.Labels), StopSignal: ic.StopSignal, ArgsEscaped: ic.ArgsEscaped,
		Volumes: maps.Clone(ic.Volumes), OnBuild: slices.Clone(ic.OnBuild), Shell: slices.Clone(ic.Shell),
	}
	if len(ic.ExposedPorts) > 0 {
		c.ExposedPorts = network.PortSet{}
		for p := range ic.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				c.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if h := ic.Healthcheck; h != nil {
		c.Healthcheck = &container.HealthConfig{
			Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return c
}

// ImageConfig is the image part of a container config, as an image's
// config records it.
func ImageConfig(c *container.Config) dockerspec.DockerOCIImageConfig {
	var ic dockerspec.DockerOCIImageConfig
	ic.User, ic.Env, ic.Entrypoint, ic.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
	ic.WorkingDir, ic.Labels, ic.StopSignal, ic.ArgsEscaped = c.WorkingDir, c.Labels, c.StopSignal, c.ArgsEscaped
	ic.Volumes, ic.OnBuild, ic.Shell = c.Volumes, c.OnBuild, c.Shell
	if len(c.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		ic.Healthcheck = &dockerspec.HealthcheckConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return ic
}
