package dropwriter

import (
	"bytes"
	"errors"
	"testing"

	"gotest.tools/v3/assert"
)

type failAfter struct {
	bytes.Buffer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("gone")
	}
	f.n--
	return f.Buffer.Write(p)
}

func TestWritesUntilTheFirstFailureThenSwallows(t *testing.T) {
	assert.Assert(t, New(nil) == nil)
	dst := &failAfter{n: 1}
	w := New(dst)
	for _, s := range []string{"a", "b", "c"} {
		n, err := w.Write([]byte(s))
		assert.NilError(t, err)
		assert.Equal(t, n, 1)
	}
	dst.n = 5 // a reader that came back is not written to again
	_, _ = w.Write([]byte("d"))
	assert.Equal(t, dst.String(), "a")
}
