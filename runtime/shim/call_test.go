package shim

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthd/berth/runtime/shim/proto"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

// TestCallReadsLongAnswers: a call's read buffer is small (callBufSize), and
// an answer line longer than it is read whole, error text included.
func TestCallReadsLongAnswers(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, proto.SocketFile))
	assert.NilError(t, err)
	defer l.Close()
	long := strings.Repeat("x", 20*callBufSize)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			var req proto.Request
			_ = json.NewDecoder(conn).Decode(&req)
			resp := proto.Response{Status: long, Pid: 42}
			if req.Op == proto.OpKill {
				resp = proto.Response{Error: long, Kind: proto.KindConflict}
			}
			b, _ := json.Marshal(resp)
			conn.Write(append(b, '\n'))
			conn.Close()
		}
	}()
	c := &Client{dir: dir, sock: filepath.Join(dir, proto.SocketFile)}
	st, err := c.State(context.Background())
	assert.NilError(t, err)
	assert.Equal(t, st.Status, long)
	assert.Equal(t, st.Pid, 42)
	err = c.Kill(context.Background(), syscall.SIGTERM)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Check(t, strings.HasPrefix(err.Error(), long), "the error's text is cut: %.80s...", err)
}
