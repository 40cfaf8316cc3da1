package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/engine"
	composerouter "github.com/berthd/berth/engine/router/compose"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fake struct {
	unimplemented
	up   compose.UpRequest
	down compose.DownRequest
}

func (f *fake) Up(_ context.Context, req compose.UpRequest) (*compose.UpResult, error) {
	f.up = req
	return &compose.UpResult{Project: "app", Actions: []compose.Action{{Kind: "Container", Name: "app-db-1", Action: "Started"}}}, nil
}

func (f *fake) Down(_ context.Context, req compose.DownRequest) (*compose.UpResult, error) {
	f.down = req
	return &compose.UpResult{Project: req.Project, Actions: []compose.Action{{Kind: "Network", Name: "app_back", Action: "Removed"}}}, nil
}

func (f *fake) Deployment(_ context.Context, project string) (*compose.DeploymentStatus, error) {
	return &compose.DeploymentStatus{Project: project, Services: []compose.ServiceStatus{{Name: "db", Desired: 1, Running: 1, Replicas: []compose.Replica{{Number: 1, Name: "app-db-1", State: container.StateRunning, Health: container.Healthy, Image: "busybox:latest"}}}}}, nil
}

func TestComposeCommands(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	f := &fake{}
	srv := &http.Server{Handler: engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, composerouter.New(f)).Handler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	file, err := filepath.Abs("../../testdata/compose/app/compose.yaml")
	assert.NilError(t, err)
	t.Setenv("BERTH_TEST_VAR", "x")

	berth := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"-H", "unix://" + sock}, args...), &out)
		return out.String(), err
	}

	out, err := berth("compose", "up", "-f", file, "--wait", "--timeout", "30")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(out, " Container app-db-1  Started\n"))
	assert.Check(t, is.DeepEqual(f.up.ConfigFiles, []string{file}))
	assert.Check(t, f.up.Wait)
	assert.Check(t, is.Equal(f.up.Timeout, 30))
	assert.Check(t, is.Contains(f.up.Environment, "BERTH_TEST_VAR=x"))

	out, err = berth("compose", "ps", "-f", file)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(out, "app-db-1"))
	assert.Check(t, is.Contains(out, "healthy"))

	out, err = berth("compose", "down", "-f", file, "-v", "-t", "0")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(f.down.Project, "app"), "the project name comes from the file")
	assert.Check(t, f.down.Volumes)
	assert.Check(t, is.Equal(*f.down.Timeout, 0))
	assert.Check(t, is.Equal(out, " Network app_back  Removed\n"))

	_, err = berth("compose", "frobnicate")
	assert.Check(t, is.ErrorContains(err, "unknown command"))
	_, err = berth("compose", "up", "extra")
	assert.Check(t, is.ErrorContains(err, "unexpected arguments"))
}
