package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/icmd"
)

var (
	composeOnce sync.Once
	composeBin  string
	composeErr  error
)

// ComposeBinary returns the docker compose v2 binary: $COMPOSE_BIN, or
// bin/docker-compose built by `make compose` (from the tools module, once per
// test process; make skips it when it is up to date).
func ComposeBinary() (string, error) {
	composeOnce.Do(func() {
		if b := os.Getenv("COMPOSE_BIN"); b != "" {
			composeBin = b
			return
		}
		root := RepoRoot()
		cmd := exec.Command("make", "-s", "compose")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			composeErr = fmt.Errorf("make compose: %v\n%s", err, out)
			return
		}
		composeBin = filepath.Join(root, "bin", "docker-compose")
	})
	return composeBin, composeErr
}

// installCompose links the compose binary into this daemon's DOCKER_CONFIG
// as the CLI plugin, so `docker compose` runs it.
func (d *Daemon) installCompose() error {
	bin, err := ComposeBinary()
	if err != nil {
		return err
	}
	dir := filepath.Join(d.config, "cli-plugins")
	link := filepath.Join(dir, "docker-compose")
	if target, err := os.Readlink(link); err == nil && target == bin {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(link)
	return os.Symlink(bin, link)
}

// InstallCompose makes `docker compose` available for this daemon's CLI
// (Compose and ComposeOK do it themselves; ComposeCmd does not).
func (d *Daemon) InstallCompose(t testing.TB) {
	t.Helper()
	if err := d.installCompose(); err != nil {
		t.Fatal(err)
	}
}

// ComposeCmd builds `docker compose <args>` against this daemon, for tests
// that need stdin or a custom timeout; call InstallCompose first.
func (d *Daemon) ComposeCmd(args ...string) icmd.Cmd {
	c := d.Cmd(append([]string{"compose"}, args...)...)
	c.Timeout = 5 * time.Minute
	return c
}

// Compose runs `docker compose <args>` (the CLI plugin) against this daemon.
// A compose binary that cannot be built or installed gives a failed result
// whose Error says why.
func (d *Daemon) Compose(args ...string) *icmd.Result {
	if err := d.installCompose(); err != nil {
		return &icmd.Result{ExitCode: 127, Error: err}
	}
	return icmd.RunCmd(d.ComposeCmd(args...))
}

// ComposeOK runs `docker compose <args>` and fails the test unless it exits 0.
// It returns stdout.
func (d *Daemon) ComposeOK(t testing.TB, args ...string) string {
	t.Helper()
	r := d.Compose(args...)
	if r.ExitCode != 0 {
		t.Fatalf("docker compose %s: exit %d (%v)\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Error, r.Stdout(), r.Stderr())
	}
	return r.Stdout()
}

// ComposeStandalone runs the same binary as `docker-compose <args>`, the way
// scripts that predate the plugin call it.
func (d *Daemon) ComposeStandalone(args ...string) *icmd.Result {
	bin, err := ComposeBinary()
	if err != nil {
		return &icmd.Result{ExitCode: 127, Error: err}
	}
	c := icmd.Command(bin, args...)
	c.Env = d.Env()
	c.Timeout = 5 * time.Minute
	return icmd.RunCmd(c)
}

var (
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

// BerthCLI returns bin/berth (berth compose up|ps|down), built once per test
// process.
func BerthCLI(t testing.TB) string {
	t.Helper()
	berthOnce.Do(func() {
		root := RepoRoot()
		cmd := exec.Command("make", "-s", "berth")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			berthErr = fmt.Errorf("make berth: %v\n%s", err, out)
			return
		}
		berthBin = filepath.Join(root, "bin", "berth")
	})
	if berthErr != nil {
		t.Fatal(berthErr)
	}
	return berthBin
}

// Berth runs `berth <args>` against this daemon.
func (d *Daemon) Berth(t testing.TB, args ...string) *icmd.Result {
	t.Helper()
	c := icmd.Command(BerthCLI(t), append([]string{"-H", "unix://" + d.Sock}, args...)...)
	c.Env = d.Env()
	c.Timeout = 5 * time.Minute
	return icmd.RunCmd(c)
}
