package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A host crash with --rm containers running (issue 17, "Teardown: a --rm
// container's layer is volatile"): their writable layers are volatile, so
// the crash leaves the kernel's work/incompat/volatile marker in each and
// may lose their store records (volatile-layers.json and
// volatile-containers.json are written without fsync). Simulated: berthd,
// the monitors and the containers killed, the mounts and the exec root gone
// (testenv.SimulateReboot), the layer directories left. After the restart
// the --rm containers are gone and nothing of their layers stays: no layer
// directory without a layer, no layer nobody uses, no storage container. A
// durable container's layer is kept, and it starts again.
func TestVolatileLayersAfterHostCrash(t *testing.T) {
	for _, lost := range []bool{false, true} {
		name := "records-kept"
		if lost {
			name = "records-lost"
		}
		t.Run(name, func(t *testing.T) { volatileAfterCrash(t, lost) })
	}
}

func volatileAfterCrash(t *testing.T, lost bool) {
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	idle := d.Storage(t)
	for i := range 3 {
		d.DockerOK(t, "run", "-d", "--rm", "--name", "rm"+string(rune('a'+i)), "busybox", "sh", "-c", "echo x > /f; exec sleep 600")
	}
	d.DockerOK(t, "create", "--rm", "--name", "rm-created", "busybox", "true")
	d.DockerOK(t, "run", "-d", "--name", "kept", "busybox", "sh", "-c", "echo kept >> /boots; exec sleep 600")
	during := d.Storage(t)
	assert.Assert(t, is.Equal(during.Containers, 5))
	assert.Check(t, is.Equal(len(volatileMarkers(t, d)), 3), "each mounted volatile layer has the kernel's marker")

	d.SimulateReboot(t)
	graph := filepath.Join(d.DataRoot, "storage")
	if lost {
		// what a crash before the writeback leaves of files written without fsync
		for _, f := range []string{"overlay-layers/volatile-layers.json", "overlay-containers/volatile-containers.json"} {
			assert.NilError(t, os.WriteFile(filepath.Join(graph, f), []byte("[]"), 0o600))
		}
	}
	d.Start(t)

	ps := strings.Fields(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"))
	assert.Check(t, is.DeepEqual(ps, []string{"kept"}))
	st := d.Storage(t)
	assert.Check(t, is.Equal(st.Containers, 1), "storage containers")
	assert.Check(t, is.Len(st.Unreferenced, 0), "layers nobody uses")
	assert.Check(t, is.Equal(st.Layers, idle.Layers+1), "layers")
	assert.Check(t, is.Equal(st.LayerDirs, st.Layers), "layer directories without a layer")
	assert.Check(t, is.Len(volatileMarkers(t, d), 0))
	assert.Check(t, is.Len(shortLinksDangling(t, d), 0), "links of removed layers")

	d.DockerOK(t, "start", "kept")
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "exec", "kept", "cat", "/boots")), "kept\nkept"))
	d.DockerOK(t, "rm", "-f", "kept")
	st = d.Storage(t)
	assert.Check(t, is.Equal(st.Layers, idle.Layers))
	assert.Check(t, is.Equal(st.LayerDirs, st.Layers))
	waitEmpty(t, d)
}

// volatileMarkers are the overlay layers' work/incompat/volatile markers.
func volatileMarkers(t *testing.T, d *testenv.Daemon) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(d.DataRoot, "storage", "overlay", "*", "work", "work", "incompat", "volatile"))
	assert.NilError(t, err)
	return m
}

// shortLinksDangling are the overlay driver's short links (overlay/l/) to
// layer directories that are gone.
func shortLinksDangling(t *testing.T, d *testenv.Daemon) []string {
	t.Helper()
	dir := filepath.Join(d.DataRoot, "storage", "overlay", "l")
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(dir, e.Name())); os.IsNotExist(err) {
			out = append(out, e.Name())
		}
	}
	return out
}
