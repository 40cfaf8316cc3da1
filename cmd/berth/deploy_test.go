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
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSplitCompose(t *testing.T) {
	cases := []struct {
		args         []string
		global, rest []string
		name, err    string
	}{
		{[]string{"up", "-d"}, nil, []string{"-d"}, "up", ""},
		{[]string{"-f", "a.yaml", "-p", "shop", "logs", "-f"}, []string{"--file", "a.yaml", "--p", "shop"}, []string{"-f"}, "logs", ""},
		{[]string{"--file=a.yaml", "ps"}, []string{"--file=a.yaml"}, []string{}, "ps", ""},
		{[]string{"--verbose", "ps"}, nil, nil, "", "unknown flag --verbose"},
		{[]string{"-p"}, nil, nil, "", "-p needs a value"},
		{[]string{"-p", "x"}, nil, nil, "", "usage"},
	}
	for _, tc := range cases {
		global, name, rest, err := splitCompose(tc.args)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), "%v", tc.args)
			continue
		}
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(global, tc.global), "%v", tc.args)
		assert.Check(t, is.Equal(name, tc.name))
		assert.Check(t, is.DeepEqual(rest, tc.rest), "%v", tc.args)
	}
}

type scaleFake struct {
	fake
	project string
	req     compose.ScaleRequest
}

func (f *scaleFake) Scale(_ context.Context, project string, req compose.ScaleRequest) (*compose.UpResult, error) {
	f.project, f.req = project, req
	return &compose.UpResult{Project: project, Actions: []compose.Action{{Kind: "Container", Name: "shop-worker-3", Action: "Created"}}}, nil
}

func TestScaleCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	f := &scaleFake{}
	srv := &http.Server{Handler: engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, composerouter.New(f)).Handler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	berth := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"-H", "unix://" + sock}, args...), &out)
		return out.String(), err
	}
	out, err := berth("compose", "scale", "-p", "shop", "worker=3", "web=0")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(out, " Container shop-worker-3  Created\n"))
	assert.Check(t, is.Equal(f.project, "shop"))
	assert.Check(t, is.DeepEqual(f.req.Services, map[string]int{"worker": 3, "web": 0}))
	_, err = berth("compose", "-p", "shop", "scale", "worker=1")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(f.req.Services, map[string]int{"worker": 1}))
	for _, bad := range [][]string{{"worker"}, {"worker=x"}, {"=3"}, {}} {
		_, err = berth(append([]string{"compose", "scale", "-p", "shop"}, bad...)...)
		assert.Check(t, err != nil, "%v", bad)
	}
}
