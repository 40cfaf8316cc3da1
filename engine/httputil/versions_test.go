package httputil

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.41", "1.41", 0},
		{"1.9", "1.41", -1},
		{"1.50", "1.6", 1},
		{"1", "1.0", 0},
		{"2.0", "1.99", 1},
	}
	for _, tc := range cases {
		assert.Equal(t, CompareVersions(tc.a, tc.b), tc.want, "%s vs %s", tc.a, tc.b)
	}
}
