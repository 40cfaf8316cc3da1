package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/berthd/berth/internal/errclass"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
)

// A deployment record keeps the *loaded* project (compose-go's YAML of it:
// interpolated, env files resolved, paths absolute, only the enabled
// services), so that the daemon can plan it again with no client, no
// environment and no files: `berth compose up -p shop`, the supervisor's
// recreates and jobs all start from it. The compose files' content and hash
// are kept beside it, to show and to tell a changed file.

// SourceFile is one compose file as it was when the project was deployed.
type SourceFile struct {
	Path    string
	Content string
}

// source is a project to deploy and where it came from.
type source struct {
	project  *types.Project
	files    []SourceFile
	fileHash string
	model    string
	envFiles string // the com.docker.compose.project.environment_file label
}

// sourceFromFiles loads a project from its files, as the compose CLI does.
func sourceFromFiles(ctx context.Context, o LoadOptions) (*source, error) {
	p, err := Load(ctx, o)
	if err != nil {
		return nil, err
	}
	src := &source{project: p, envFiles: envValue(o.Environment, "COMPOSE_ENV_FILES")}
	if src.model, err = marshalModel(p); err != nil {
		return nil, err
	}
	for _, f := range p.ComposeFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			// compose-go has just read it: a file that went meanwhile
			return nil, invalid(err)
		}
		src.files = append(src.files, SourceFile{Path: f, Content: string(b)})
	}
	src.fileHash = filesHash(src.files)
	return src, nil
}

// sourceFromRecord is the project a record deployed.
func sourceFromRecord(ctx context.Context, rec *DeploymentRecord) (*source, error) {
	p, err := loadModel(ctx, rec)
	if err != nil {
		return nil, err
	}
	return &source{project: p, files: rec.Files, fileHash: rec.FileHash, model: rec.Model, envFiles: rec.EnvFiles}, nil
}

func marshalModel(p *types.Project) (string, error) {
	b, err := p.MarshalYAML()
	if err != nil {
		return "", fmt.Errorf("encode the project model: %w", err)
	}
	return string(b), nil
}

// loadModel reads a record's model back into the project it was, with the
// compose labels of its containers. Nothing is interpolated or read again:
// the model is what was loaded then.
func loadModel(ctx context.Context, rec *DeploymentRecord) (*types.Project, error) {
	if rec.Model == "" {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("deployment %s has no compose model: it was deployed by the docker compose CLI from files berth could not load; run docker compose, or berth compose up -f FILE", rec.Project))
	}
	details := types.ConfigDetails{
		WorkingDir:  rec.WorkingDir,
		ConfigFiles: []types.ConfigFile{{Filename: "berth-model.yaml", Content: []byte(rec.Model)}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SkipInterpolation = true
		o.SkipResolveEnvironment = true
		o.SkipInclude = true
		o.SkipExtends = true
		o.Profiles = []string{"*"} // the model holds the enabled services only
		o.SetProjectName(rec.Project, true)
	})
	if err != nil {
		return nil, fmt.Errorf("the recorded model of %s does not load: %w", rec.Project, errclass.Wrap(errdefs.ErrDataLoss, "", err))
	}
	p.WorkingDir = rec.WorkingDir
	p.ComposeFiles = append([]string(nil), rec.ConfigFiles...)
	addComposeLabels(p, rec.EnvFiles)
	return p, nil
}

// filesHash is the SHA-256 over the files' paths and contents, in order.
func filesHash(files []SourceFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s\n%d:", len(f.Path), f.Path, len(f.Content))
		h.Write([]byte(f.Content))
	}
	return hex.EncodeToString(h.Sum(nil))
}
