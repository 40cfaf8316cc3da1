package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	buildxOnce sync.Once
	buildxBin  string
	buildxErr  error
)

// BuildxBinary returns the buildx CLI plugin: $BUILDX_BIN, or
// bin/docker-buildx built by `make buildx` (from tools/buildx, once per
// test process; make skips it when it is up to date).
func BuildxBinary() (string, error) {
	buildxOnce.Do(func() {
		if b := os.Getenv("BUILDX_BIN"); b != "" {
			buildxBin = b
			return
		}
		root := RepoRoot()
		cmd := exec.Command("make", "-s", "buildx")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildxErr = fmt.Errorf("make buildx: %v\n%s", err, out)
			return
		}
		buildxBin = filepath.Join(root, "bin", "docker-buildx")
	})
	return buildxBin, buildxErr
}

// installBuildx links buildx into this daemon's DOCKER_CONFIG as the CLI
// plugin, as every Docker installation ships it: `docker build` then goes
// to BuildKit (berthd's /grpc and /session), as users run it.
func (d *Daemon) installBuildx() error {
	bin, err := BuildxBinary()
	if err != nil {
		return err
	}
	dir := filepath.Join(d.config, "cli-plugins")
	link := filepath.Join(dir, "docker-buildx")
	if target, err := os.Readlink(link); err == nil && target == bin {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(link)
	return os.Symlink(bin, link)
}
