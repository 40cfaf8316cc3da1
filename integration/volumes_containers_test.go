package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A named volume written by one container is read by the next, survives
// both containers, refuses removal while a container uses it, and is gone
// from disk once removed.
func TestVolumeSharedBetweenContainers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f")
	out := d.DockerOK(t, "run", "--name", "reader", "-v", "data:/data", "busybox", "cat", "/data/f")
	assert.Equal(t, strings.TrimSpace(out), "hello")
	d.DockerOK(t, "rm", "writer", "reader")
	mp := strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "data"))
	b, err := os.ReadFile(filepath.Join(mp, "f"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "hello\n")

	id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "long", "-v", "data:/data", "busybox", "sleep", "300"))
	r := d.Docker("volume", "rm", "data")
	assert.Equal(t, r.ExitCode, 1)
	assert.Check(t, is.Contains(r.Stderr(), "remove data: volume is in use - ["+id+"]"))
	req, _ := http.NewRequest(http.MethodDelete, "http://berth/volumes/data", nil)
	resp, err := unixClient(d.Sock).Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusConflict)

	d.DockerOK(t, "rm", "-f", "long")
	d.DockerOK(t, "volume", "rm", "data")
	_, err = os.Stat(filepath.Dir(mp))
	assert.Check(t, os.IsNotExist(err), "gone from disk")
}

func TestBindReadOnlyAndMountsInInspect(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	host := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(host, "f"), []byte("host file"), 0o644))

	out := d.DockerOK(t, "run", "--rm", "-v", host+":/data:ro", "busybox", "cat", "/data/f")
	assert.Equal(t, out, "host file")
	r := d.Docker("run", "--rm", "-v", host+":/data:ro", "busybox", "touch", "/data/new")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "Read-only file system"))
	_, err := os.Stat(filepath.Join(host, "new"))
	assert.Check(t, os.IsNotExist(err))

	d.DockerOK(t, "create", "--name", "c1", "-v", host+":/data:ro,Z", "-v", "named1:/n:nocopy", "--mount", "type=tmpfs,dst=/t", "busybox")
	var mps []container.MountPoint
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "inspect", "-f", "{{json .Mounts}}", "c1")), &mps))
	byDest := map[string]container.MountPoint{}
	for _, m := range mps {
		byDest[m.Destination] = m
	}
	assert.DeepEqual(t, byDest["/data"], container.MountPoint{Type: "bind", Source: host, Destination: "/data", Mode: "ro,Z", RW: false, Propagation: "rprivate"})
	assert.DeepEqual(t, byDest["/n"], container.MountPoint{Type: "volume", Name: "named1", Source: filepath.Join(d.DataRoot, "volumes", "named1", "_data"), Destination: "/n", Driver: "local", Mode: "nocopy", RW: true})
	assert.DeepEqual(t, byDest["/t"], container.MountPoint{Type: "tmpfs", Destination: "/t", RW: true})
}

func TestTmpfsMountSize(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	out := d.DockerOK(t, "run", "--rm", "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=2097152,tmpfs-mode=1770", "busybox", "grep", " /scratch ", "/proc/mounts")
	assert.Check(t, is.Contains(out, "tmpfs /scratch tmpfs"))
	assert.Check(t, is.Contains(out, "size=2048k"))
	assert.Check(t, is.Contains(out, "mode=1770"))
	assert.Check(t, is.Contains(out, "noexec"))
}

// An image VOLUME with content gets an anonymous volume holding that
// content; `docker rm -v` removes it. A new named volume gets the content
// too, unless nocopy.
func TestImageVolumeCopyUp(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	img, _ := testenv.Image(t, testimage.Options{Tag: "volimg:latest", Volumes: []string{"/data"}, Files: map[string]string{"data/hello": "from image"}})
	d.DockerOK(t, "load", "-q", "-i", img)

	out := d.DockerOK(t, "run", "--name", "c1", "volimg", "cat", "/data/hello")
	assert.Equal(t, out, "from image")
	anon := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "c1"))
	assert.Equal(t, len(anon), 64)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{index .Labels \"com.docker.volume.anonymous\"}}|{{.Driver}}", anon)), "|local")
	d.DockerOK(t, "rm", "-v", "c1")
	r := d.Docker("volume", "inspect", anon)
	assert.Check(t, is.Contains(r.Stderr(), "no such volume"))

	d.DockerOK(t, "run", "--rm", "-v", "named:/data", "volimg", "true")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "-v", "named:/data", "busybox", "cat", "/data/hello"), "from image")
	// a named volume stays after rm -v
	d.DockerOK(t, "run", "--name", "c2", "-v", "named:/data", "volimg", "true")
	d.DockerOK(t, "rm", "-v", "c2")
	d.DockerOK(t, "volume", "inspect", "named")

	out = d.DockerOK(t, "run", "--rm", "-v", "nc:/data:nocopy", "volimg", "ls", "-A", "/data")
	assert.Equal(t, strings.TrimSpace(out), "")
}

func TestMountErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"create", "--mount", "type=bind,src=/nonexistent-berth,dst=/x", "busybox"}, `invalid mount config for type "bind": bind source path does not exist: /nonexistent-berth`},
		{[]string{"create", "-v", "rel/path:/data", "busybox"}, `create rel/path: "rel/path" includes invalid characters for a local volume name`},
		{[]string{"create", "-v", "/tmp:data", "busybox"}, `invalid volume specification: '/tmp:data': invalid mount config for type "bind": invalid mount path: 'data' mount path must be absolute`},
		{[]string{"create", "-v", "/tmp:/data", "-v", "v1:/data", "busybox"}, "Duplicate mount point: /data"},
		{[]string{"create", "--tmpfs", "/run:size=abc", "busybox"}, `invalid tmpfs option`},
	}
	for _, tc := range cases {
		r := d.Docker(tc.args...)
		assert.Check(t, r.ExitCode != 0, tc.args)
		assert.Check(t, is.Contains(r.Stderr(), tc.want), tc.args)
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), "", "nothing half-created")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "ls", "-q")), "")
}
