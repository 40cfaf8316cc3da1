package execroot

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// mountsAt counts the mounts at (or under) dir.
func mountsAt(dir string) int { return len(testenv.MountsUnder(dir)) }

// diskDir is a directory on a disk filesystem (the test's temp directory,
// unless that is in memory: then the test cannot say anything).
func diskDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	dir := t.TempDir()
	if inMem, err := InMemory(dir); err != nil || inMem {
		t.Skipf("%s is in memory already (%v): nothing to mount over", dir, err)
	}
	t.Cleanup(func() {
		// what a failed check left mounted, at dir or under it
		testenv.UnmountUnder(dir)
		if left := testenv.MountsUnder(dir); len(left) > 0 {
			t.Errorf("still mounted: %v", left)
		}
	})
	return dir
}

func TestPrepareMountsAnEmptyDiskDirOnce(t *testing.T) {
	root := diskDir(t)
	dir := filepath.Join(root, "run") // made by Prepare
	mounted, err := Prepare(dir)
	assert.NilError(t, err)
	assert.Check(t, mounted)
	inMem, err := InMemory(dir)
	assert.NilError(t, err)
	assert.Check(t, inMem)
	fi, err := os.Stat(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o711)))

	// a daemon started again on this boot finds its state where it left it
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "state"), []byte("x"), 0o600))
	mounted, err = Prepare(dir)
	assert.NilError(t, err)
	assert.Check(t, !mounted)
	assert.Check(t, is.Equal(mountsAt(dir), 1))
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "x"))

	// a start that failed takes its tmpfs away again
	assert.NilError(t, Undo(dir))
	assert.Check(t, is.Equal(mountsAt(dir), 0))
	_, err = os.Stat(filepath.Join(dir, "state"))
	assert.Check(t, os.IsNotExist(err), "%v", err)
}

// An exec root on disk that holds something (the state of containers an
// older berthd left running) is never hidden under a new mount.
func TestPrepareLeavesADiskDirWithState(t *testing.T) {
	dir := diskDir(t)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "shim.sock"), nil, 0o600))
	mounted, err := Prepare(dir)
	assert.NilError(t, err)
	assert.Check(t, !mounted)
	assert.Check(t, is.Equal(mountsAt(dir), 0))
	_, err = os.Stat(filepath.Join(dir, "shim.sock"))
	assert.Check(t, err)
}

// Daemons started at once on one exec root mount one tmpfs, not one each
// (a second would hide the first's socket).
func TestConcurrentPreparesMountOnce(t *testing.T) {
	for round := 0; round < 5; round++ {
		dir := diskDir(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		mountedBy := 0
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := Prepare(dir)
				assert.Check(t, err)
				if m {
					mu.Lock()
					mountedBy++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assert.Check(t, is.Equal(mountedBy, 1), "round %d", round)
		assert.Check(t, is.Equal(mountsAt(dir), 1), "round %d", round)
	}
}
