package compose

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLogsMergeByTime(t *testing.T) {
	h := newHarness(t)
	h.write(t, shopYAML)
	h.up(t)
	h.e.logs["shop-worker-1"] = []string{"@1 a", "@4 b", "@9 c"}
	h.e.logs["shop-worker-2"] = []string{"@2 x", "@3 y", "@10 z"}
	h.e.logs["shop-web-1"] = []string{"@5 web"}
	collect := func(req LogsRequest) []string {
		ch, err := h.m.Logs(context.Background(), "shop", req)
		assert.NilError(t, err)
		var out []string
		for e := range ch {
			out = append(out, e.Prefix()+" "+e.Line)
		}
		return out
	}
	assert.Check(t, is.DeepEqual(collect(LogsRequest{Tail: -1}), []string{
		"worker-1 a", "worker-2 x", "worker-2 y", "worker-1 b", "web-1 web", "worker-1 c", "worker-2 z",
	}))
	assert.Check(t, is.DeepEqual(collect(LogsRequest{Services: []string{"worker"}, Tail: 1}), []string{"worker-1 c", "worker-2 z"}))
	// following replicas that have all stopped ends with their lines
	for _, n := range h.names("shop") {
		h.e.exit(n, 0)
	}
	assert.Check(t, is.Len(collect(LogsRequest{Tail: -1, Follow: true}), 7))

	_, err := h.m.Logs(context.Background(), "nope", LogsRequest{})
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = h.m.Logs(context.Background(), "shop", LogsRequest{Services: []string{"db"}})
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "no such service: db"))
}
