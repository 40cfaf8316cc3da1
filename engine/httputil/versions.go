package httputil

import (
	"strconv"
	"strings"
)

// CompareVersions compares two dotted API versions ("1.41", "1.9") numerically
// and returns -1, 0 or 1. Missing parts count as 0.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// VersionLessThan reports whether version a is older than b.
func VersionLessThan(a, b string) bool { return CompareVersions(a, b) < 0 }
