package phasetrace

import (
	"context"
	"errors"
	"testing"

	"github.com/berthd/berth/runtime"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The fakes embed the interfaces: a call the test does not expect panics.
type fakeImages struct{ runtime.Images }

func (fakeImages) CreateRootfs(context.Context, string, string, runtime.RootfsOptions) error {
	return nil
}
func (fakeImages) MountRootfs(context.Context, string) (string, error) {
	return "", errors.New("mount failed")
}
func (fakeImages) RemoveRootfs(context.Context, string) error { return nil }

type fakeMonitors struct{ runtime.Monitors }

func (fakeMonitors) Connect(context.Context, string) (runtime.Task, error) { return fakeTask{}, nil }

type fakeTask struct{ runtime.Task }

func (fakeTask) Start(context.Context) error { return nil }

func phases(h *test.Hook) []logrus.Fields {
	var out []logrus.Fields
	for _, e := range h.AllEntries() {
		if e.Message == "phase" && e.Level == logrus.DebugLevel {
			out = append(out, e.Data)
		}
	}
	return out
}

func TestWrapLogsEachStepWithItsGap(t *testing.T) {
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	std := logrus.StandardLogger()
	out, level, hooks := std.Out, std.Level, std.ReplaceHooks(logrus.LevelHooks{})
	std.SetOutput(log.Out)
	std.SetLevel(logrus.DebugLevel)
	std.AddHook(hook)
	t.Cleanup(func() { std.SetOutput(out); std.SetLevel(level); std.ReplaceHooks(hooks) })

	images, _, monitors := Wrap(fakeImages{}, nil, fakeMonitors{})
	ctx := context.Background()
	id := "0123456789abcdef0123"
	assert.NilError(t, images.CreateRootfs(ctx, id, "img", runtime.RootfsOptions{}))
	_, err := images.MountRootfs(ctx, id)
	assert.Check(t, is.Error(err, "mount failed"))
	task, err := monitors.Connect(ctx, "/run/berth/containers/"+id)
	assert.NilError(t, err)
	assert.NilError(t, task.Start(ctx))
	assert.NilError(t, images.RemoveRootfs(ctx, id))
	assert.NilError(t, images.CreateRootfs(ctx, id, "img", runtime.RootfsOptions{}))

	got := phases(hook)
	assert.Assert(t, is.Len(got, 6))
	wantPhases := []string{"rootfs create", "rootfs mount", "monitor reconnect", "runtime start", "rootfs remove", "rootfs create"}
	for i, f := range got {
		assert.Check(t, is.Equal(f["phase"], wantPhases[i]))
		assert.Check(t, is.Equal(f["container"], "0123456789ab"), "the short id, as the monitor knows it")
		assert.Check(t, f["ms"] != nil)
	}
	_, firstHasGap := got[0]["gap_ms"]
	assert.Check(t, !firstHasGap, "the first step has no previous one")
	for _, i := range []int{1, 2, 3, 4} {
		_, ok := got[i]["gap_ms"]
		assert.Check(t, ok, "step %d (%s) has the gap since the previous one", i, got[i]["phase"])
	}
	assert.Check(t, is.Equal(got[1]["error"], "mount failed"))
	_, lastHasGap := got[5]["gap_ms"]
	assert.Check(t, !lastHasGap, "a removed container's clock is forgotten")
}
