package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

func TestVolumeCreateInspectRemove(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "create", "--label", "tier=db", "--label", "keep", "myvol")), "myvol")
	// create is idempotent
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "create", "myvol")), "myvol")

	var vols []volume.Volume
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "volume", "inspect", "myvol")), &vols))
	assert.Assert(t, is.Len(vols, 1))
	v := vols[0]
	assert.Equal(t, v.Name, "myvol")
	assert.Equal(t, v.Driver, "local")
	assert.Equal(t, v.Scope, "local")
	assert.Equal(t, v.Mountpoint, filepath.Join(d.DataRoot, "volumes", "myvol", "_data"))
	assert.DeepEqual(t, v.Labels, map[string]string{"tier": "db", "keep": ""})
	created, err := time.Parse(time.RFC3339, v.CreatedAt)
	assert.NilError(t, err)
	assert.Check(t, time.Since(created) < time.Minute)
	fi, err := os.Stat(v.Mountpoint)
	assert.NilError(t, err)
	assert.Check(t, fi.IsDir())

	out := d.DockerOK(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "scratch")
	assert.Equal(t, strings.TrimSpace(out), "scratch")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{json .Options}}", "scratch")), `{"device":"tmpfs","o":"size=1m","type":"tmpfs"}`)

	// survives a daemon restart
	d.Restart(t, syscall.SIGTERM)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{.Name}} {{.Labels.tier}}", "myvol")), "myvol db")

	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "rm", "myvol")), "myvol")
	_, err = os.Stat(filepath.Dir(v.Mountpoint))
	assert.Check(t, os.IsNotExist(err), "volume directory gone from disk")
	d.DockerOK(t, "volume", "rm", "scratch")
}

func TestVolumeErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"volume", "inspect", "nosuch"}, "Error response from daemon: get nosuch: no such volume"},
		{[]string{"volume", "rm", "nosuch"}, "Error response from daemon: get nosuch: no such volume"},
		{[]string{"volume", "create", "-d", "x", "foo"}, `Error response from daemon: create foo: error looking up volume plugin x: plugin "x" not found`},
		{[]string{"volume", "create", "a"}, "Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters"},
		{[]string{"volume", "create", "a/b"}, `Error response from daemon: create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{[]string{"volume", "create", "-o", "type=tmpfs", "myt"}, `Error response from daemon: create myt: missing required option: "device"`},
		{[]string{"volume", "create", "-o", "foo=bar", "myt2"}, `Error response from daemon: create myt2: invalid option: "foo"`},
		{[]string{"volume", "ls", "-f", "bogus=1"}, "Error response from daemon: invalid filter 'bogus'"},
		{[]string{"volume", "prune", "-f", "--filter", "dangling=true"}, "Error response from daemon: invalid filter 'dangling'"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := d.Docker(tc.args...)
			assert.Equal(t, r.ExitCode, 1, r.Combined())
			assert.Check(t, is.Contains(r.Stderr(), tc.want))
		})
	}
	// force makes a missing volume not an error
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "rm", "-f", "nosuch")), "nosuch")
	// nothing was half-created
	assert.DeepEqual(t, lines(d.DockerOK(t, "volume", "ls", "-q")), []string{})
	entries, err := os.ReadDir(filepath.Join(d.DataRoot, "volumes"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))

	// the status codes behind the messages
	c := unixClient(d.Sock)
	for path, want := range map[string]int{"/v1.41/volumes/nosuch": 404, "/volumes/nosuch": 404} {
		resp, err := c.Get("http://berth" + path)
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, want, path)
	}
	resp, err := c.Post("http://berth/volumes/create", "application/json", strings.NewReader(`{"Name":"foo","Driver":"x"}`))
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusNotFound)
	resp, err = c.Post("http://berth/volumes/create", "application/json", strings.NewReader(`{"Name":"a"}`))
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusBadRequest)
}

func TestVolumeListFilters(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.DockerOK(t, "volume", "create", "--label", "tier=db", "alpha")
	d.DockerOK(t, "volume", "create", "--label", "tier=web", "beta")
	d.DockerOK(t, "volume", "create", "gamma")
	anon := strings.TrimSpace(d.DockerOK(t, "volume", "create"))
	assert.Equal(t, len(anon), 64)
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{json .Labels}}", anon)), `{"com.docker.volume.anonymous":""}`)

	cases := []struct {
		filters []string
		want    []string
	}{
		{nil, sorted(anon, "alpha", "beta", "gamma")},
		{[]string{"name=al"}, []string{"alpha"}},
		{[]string{"label=tier"}, []string{"alpha", "beta"}},
		{[]string{"label=tier=web"}, []string{"beta"}},
		{[]string{"label=com.docker.volume.anonymous"}, []string{anon}},
		{[]string{"dangling=true", "label=tier"}, []string{"alpha", "beta"}},
		{[]string{"dangling=false"}, []string{}},
		{[]string{"driver=local", "name=gamma"}, []string{"gamma"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.filters, ","), func(t *testing.T) {
			args := []string{"volume", "ls", "-q"}
			for _, f := range tc.filters {
				args = append(args, "-f", f)
			}
			assert.DeepEqual(t, lines(d.DockerOK(t, args...)), tc.want)
		})
	}
	out := d.DockerOK(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Labels}}", "-f", "name=beta")
	assert.Equal(t, strings.TrimSpace(out), "local beta tier=web")
}

func TestVolumePrune(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	anon := strings.TrimSpace(d.DockerOK(t, "volume", "create"))
	d.DockerOK(t, "volume", "create", "named")
	d.DockerOK(t, "volume", "create", "--label", "keep=yes", "kept")
	// real bytes to reclaim
	mp := strings.TrimSpace(d.DockerOK(t, "volume", "inspect", "-f", "{{.Mountpoint}}", anon))
	assert.NilError(t, os.WriteFile(filepath.Join(mp, "blob"), make([]byte, 300000), 0o644))

	// current API: anonymous volumes only
	c := unixClient(d.Sock)
	rep := postPrune(t, c, "/volumes/prune")
	assert.DeepEqual(t, rep.VolumesDeleted, []string{anon})
	assert.Equal(t, rep.SpaceReclaimed, uint64(300000))
	_, err := os.Stat(mp)
	assert.Check(t, os.IsNotExist(err))

	// the CLI's -a with a label! filter: named ones too, but not the excluded
	out := d.DockerOK(t, "volume", "prune", "-af", "--filter", "label!=keep=yes")
	assert.Check(t, is.Contains(out, "named"))
	assert.Check(t, !strings.Contains(out, "kept"))
	assert.DeepEqual(t, lines(d.DockerOK(t, "volume", "ls", "-q")), []string{"kept"})

	// API < 1.42: every unused volume, as dockerd did then
	rep = postPrune(t, c, "/v1.41/volumes/prune")
	assert.DeepEqual(t, rep.VolumesDeleted, []string{"kept"})
	assert.DeepEqual(t, lines(d.DockerOK(t, "volume", "ls", "-q")), []string{})
}

func postPrune(t *testing.T, c *http.Client, path string) volume.PruneReport {
	t.Helper()
	resp, err := c.Post("http://berth"+path, "application/json", nil)
	assert.NilError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, resp.StatusCode, http.StatusOK, string(body))
	var rep volume.PruneReport
	assert.NilError(t, json.Unmarshal(body, &rep))
	return rep
}

func TestVolumeEvents(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	d.DockerOK(t, "volume", "create", "evvol")
	d.DockerOK(t, "volume", "rm", "evvol")
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := d.DockerOK(t, "events", "--since", since, "--until", until, "--filter", "type=volume",
		"--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}")
	assert.DeepEqual(t, lines(out), []string{"volume create evvol local", "volume destroy evvol local"})
}
