package detachkeys

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"gotest.tools/v3/assert"
)

func TestParse(t *testing.T) {
	k, err := Parse("ctrl-p,ctrl-q")
	assert.NilError(t, err)
	assert.DeepEqual(t, k, []byte{16, 17})
	k, err = Parse("a,ctrl-@")
	assert.NilError(t, err)
	assert.DeepEqual(t, k, []byte{'a', 0})
	_, err = Parse("ctrl-pq")
	assert.ErrorContains(t, err, "Invalid detach keys")
}

func TestReader(t *testing.T) {
	cases := []struct {
		name, in, want string
		detached       bool
	}{
		{"plain", "hello", "hello", false},
		{"detach", "ab\x10\x11cd", "ab", true},
		{"partial then other", "a\x10b\x10\x11", "a\x10b", true},
		{"held at eof", "x\x10", "x", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewReader(iotest.OneByteReader(strings.NewReader(tc.in)), []byte{16, 17})
			got, err := io.ReadAll(d)
			assert.NilError(t, err)
			assert.Equal(t, string(got), tc.want)
			select {
			case <-d.Detached():
				assert.Check(t, tc.detached)
			default:
				assert.Check(t, !tc.detached)
			}
		})
	}
}
