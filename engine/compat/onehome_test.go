package compat

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyCompatComparesVersions keeps this package the one home of the
// API's version quirks: no route handler compares API versions itself.
func TestOnlyCompatComparesVersions(t *testing.T) {
	var found []string
	err := filepath.WalkDir("../router", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range []string{"VersionLessThan(", "CompareVersions("} {
			if strings.Contains(string(b), f) {
				found = append(found, path+": "+f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("route handlers compare API versions; add a named quirk to engine/compat instead:\n%s", strings.Join(found, "\n"))
	}
}

func TestStreamContentType(t *testing.T) {
	for _, tc := range []struct {
		version string
		tty     bool
		want    string
	}{
		{"1.41", false, "application/vnd.docker.raw-stream"},
		{"1.42", false, "application/vnd.docker.multiplexed-stream"},
		{"1.52", true, "application/vnd.docker.raw-stream"},
	} {
		if got := StreamContentType(tc.version, tc.tty); got != tc.want {
			t.Errorf("%s tty=%v: %s, want %s", tc.version, tc.tty, got, tc.want)
		}
	}
}
