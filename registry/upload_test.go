package registry

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestUploadLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		limit   UploadLimit
		size    int
		wantErr func(error) bool
		msg     string
	}{
		{name: "within", limit: UploadLimit{Max: 1 << 20, Dir: dir}, size: 1 << 20},
		{name: "over the cap", limit: UploadLimit{Max: 1 << 20, Dir: dir}, size: 1<<20 + 1, wantErr: errdefs.IsInvalidArgument, msg: "context is larger than the daemon's limit of 1048576 bytes"},
		{name: "no cap", limit: UploadLimit{Dir: dir}, size: 3 << 20},
		// a reserve no disk has: the first read is refused
		{name: "disk reserve", limit: UploadLimit{Dir: dir, Reserve: 1 << 62}, size: 10, wantErr: errdefs.IsResourceExhausted, msg: "not enough free space on the daemon's disk for the context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := tc.limit.Reader(bytes.NewReader(make([]byte, tc.size)), "context")
			n, err := io.Copy(io.Discard, lr)
			if tc.wantErr == nil {
				assert.NilError(t, err)
				assert.Check(t, is.Equal(n, int64(tc.size)))
				assert.Check(t, lr.Err() == nil)
				return
			}
			assert.Check(t, tc.wantErr(err), "%v", err)
			assert.Check(t, is.Equal(lr.Err(), err))
			assert.Check(t, strings.Contains(err.Error(), tc.msg), err.Error())
		})
	}
}
