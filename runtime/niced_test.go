package runtime

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// niced runs f at a lower priority than the caller's, returns its error,
// and leaves the caller's thread as it was.
func TestNiced(t *testing.T) {
	self := func() int {
		p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		assert.NilError(t, err)
		return 20 - p
	}
	for range 3 {
		var inside, outside int
		want := errors.New("from f")
		err := niced(func() error {
			inside = self()
			return want
		})
		assert.Assert(t, errors.Is(err, want))
		outside = self()
		assert.Equal(t, inside, min(outside+niceBackground, 19))
	}
}
