package compose

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
)

// LoadOptions are what `docker compose -f FILE -p NAME --profile P` gets.
type LoadOptions struct {
	// ConfigFiles are the compose files, merged in order; relative paths are
	// relative to WorkingDir (the client sends absolute ones). Empty:
	// compose.yaml (or the other default names) in WorkingDir or a parent.
	ConfigFiles []string
	// WorkingDir is the project directory; "" means the first file's.
	WorkingDir string
	// ProjectName is -p; "" means name: in the file, else
	// COMPOSE_PROJECT_NAME, else the project directory's name.
	ProjectName string
	Profiles    []string
	// Environment is the client's environment (KEY=VALUE) for interpolation
	// and COMPOSE_* settings; .env in the project directory is read too. The
	// daemon's own environment is never used.
	Environment []string
	// Services selects services (and what they depend on); empty: all.
	Services []string
}

// Load reads a compose project the way the compose CLI does (compose-go with
// the CLI's options), and adds the labels compose adds to every service, so
// that Plan hashes the same service compose hashes. Errors are
// ErrInvalidArgument: the file is what is wrong.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	env := append([]string(nil), o.Environment...)
	if o.WorkingDir != "" && !hasEnv(env, "PWD") {
		env = append(env, "PWD="+o.WorkingDir)
	}
	files := make([]string, len(o.ConfigFiles))
	for i, f := range o.ConfigFiles {
		if !filepath.IsAbs(f) && f != "-" {
			f = filepath.Join(o.WorkingDir, f)
		}
		files[i] = f
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(o.WorkingDir),
		cli.WithEnv(env),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithDotEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithName(o.ProjectName),
	)
	if err != nil {
		return nil, invalid(err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, invalid(err)
	}
	if p.Name == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("project name can't be empty")
	}
	if p, err = p.WithServicesEnabled(o.Services...); err != nil {
		return nil, invalid(err)
	}
	addComposeLabels(p, envValue(env, "COMPOSE_ENV_FILES"))
	if p, err = p.WithSelectedServices(o.Services); err != nil {
		return nil, invalid(err)
	}
	return p.WithoutUnnecessaryResources(), nil
}

// addComposeLabels puts on every service the labels compose adds to its
// containers (they are not part of the file, so not of the config hash).
func addComposeLabels(p *types.Project, envFiles string) {
	for name, s := range p.Services {
		s.CustomLabels = map[string]string{
			LabelProject:     p.Name,
			LabelService:     name,
			LabelVersion:     ComposeVersion,
			LabelWorkingDir:  p.WorkingDir,
			LabelConfigFiles: strings.Join(p.ComposeFiles, ","),
			LabelOneoff:      "False",
		}
		if envFiles != "" {
			s.CustomLabels[LabelEnvironmentFile] = envFiles
		}
		p.Services[name] = s
	}
}

func invalid(err error) error {
	return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}
