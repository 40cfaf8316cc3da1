package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/berthd/berth/internal/testenv"
)

// A pull whose client goes away mid-copy (^C on docker pull) ends its
// copy helper and leaves no layer, staging directory or image of the cut
// copy; the image then pulls whole. Three times; berthd serves on.
func TestImagePullCancelled(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BigImageArchive(t, "big:latest", 4, 16<<20, 11)
	reg.Push(t, archive, "big/img:latest")
	ref := reg.Addr + "/big/img:latest"
	d := testenv.StartDaemon(t)
	for round := 0; round < 3; round++ {
		p := exec.Command("docker", "pull", ref) // the CLI, to kill mid-pull
		p.Env = d.Env()
		stdout, err := p.StdoutPipe()
		assert.NilError(t, err)
		assert.NilError(t, p.Start())
		// the copy has begun once a layer is being fetched
		sc := bufio.NewScanner(stdout)
		began := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Downloading") || strings.Contains(sc.Text(), "Pulling fs layer") {
				began = true
				break
			}
		}
		assert.Assert(t, began, "round %d: the pull never began", round)
		assert.NilError(t, p.Process.Kill())
		_ = p.Wait()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if pids := d.ImageCopyPids(); len(pids) > 0 {
				return poll.Continue("copy helpers %v still run", pids)
			}
			return poll.Success()
		}, poll.WithTimeout(60*time.Second), poll.WithDelay(20*time.Millisecond))
		st := d.Storage(t)
		r := d.Docker("image", "inspect", "-f", "{{.Id}}", ref)
		if r.ExitCode == 0 {
			t.Logf("round %d: the pull had finished", round)
			assert.Check(t, is.Equal(strings.TrimSpace(r.Stdout()), id))
			d.DockerOK(t, "rmi", ref)
			st = d.Storage(t)
		}
		assert.Check(t, is.Equal(st.Images, 0), "round %d: %+v", round, st)
		assert.Check(t, is.Len(st.Unreferenced, 0), "round %d: layers of the cut pull are left: %+v", round, st)
		assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "round %d: layer directories without a layer: %+v", round, st)
		tmp, _ := os.ReadDir(filepath.Join(d.DataRoot, "storage", "overlay", "tempdirs"))
		assert.Check(t, is.Len(tmp, 0), "round %d: staging directories left", round)
		if t.Failed() {
			return
		}
	}
	d.DockerOK(t, "pull", "-q", ref)
	assert.Equal(t, inspectF(t, d, "{{.Id}}", ref), id)
}
