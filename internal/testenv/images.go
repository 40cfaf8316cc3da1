package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berthd/berth/internal/testimage"
)

var (
	imgOnce sync.Once
	imgDir  string
	imgErr  error
	imgRes  *testimage.Result
)

// BusyboxArchive returns the path of the busybox:latest docker-archive,
// built once per test process from the host's busybox-static.
func BusyboxArchive(t testing.TB) (path string, imageID string) {
	t.Helper()
	imgOnce.Do(func() {
		imgDir, imgErr = os.MkdirTemp("", "berth-images-")
		if imgErr != nil {
			return
		}
		imgRes, imgErr = testimage.WriteDockerArchive(filepath.Join(imgDir, "busybox.tar"), testimage.Options{Tag: "busybox:latest"})
	})
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return filepath.Join(imgDir, "busybox.tar"), imgRes.ImageID
}

// Image writes a custom test image as a docker-archive under t's temp dir.
func Image(t testing.TB, o testimage.Options) (path string, imageID string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	res, err := testimage.WriteDockerArchive(p, o)
	if err != nil {
		t.Fatal(err)
	}
	return p, res.ImageID
}

// LoadBusybox loads busybox:latest into the daemon.
func (d *Daemon) LoadBusybox(t testing.TB) string {
	t.Helper()
	p, id := BusyboxArchive(t)
	d.DockerOK(t, "load", "-q", "-i", p)
	return id
}

// AnchorsDir finds the workplace's shared anchor scripts (verify-engine.sh,
// make-images.sh): $BERTH_ANCHORS, ../shared/anchors next to the checkout,
// or /work/shared/anchors. It fails the test when none exists.
func AnchorsDir(t testing.TB) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("BERTH_ANCHORS"), filepath.Join(RepoRoot(), "..", "shared", "anchors"), "/work/shared/anchors"} {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "verify-engine.sh")); err == nil {
			return dir
		}
	}
	t.Fatal("the shared anchor scripts were not found: set BERTH_ANCHORS to the directory holding verify-engine.sh")
	return ""
}
