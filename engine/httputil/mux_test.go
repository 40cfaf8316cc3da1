package httputil

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"gotest.tools/v3/assert"
)

func TestMuxWritersRoundTripWithStdCopy(t *testing.T) {
	var conn bytes.Buffer
	out, errw := NewMuxWriters(&conn)
	_, _ = out.Write([]byte("hello "))
	_, _ = errw.Write([]byte("oops\n"))
	_, _ = out.Write([]byte("world\n"))
	_, _ = out.Write(nil)
	var gotOut, gotErr strings.Builder
	_, err := stdcopy.StdCopy(&gotOut, &gotErr, &conn)
	assert.NilError(t, err)
	assert.Equal(t, gotOut.String(), "hello world\n")
	assert.Equal(t, gotErr.String(), "oops\n")
}
