package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// apiCall does one Engine API request on the daemon's socket and returns
// the status and body.
func apiCall(t *testing.T, d *testenv.Daemon, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, body)
	assert.NilError(t, err)
	resp, err := unixClient(d.Sock).Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// imageIDs lists the distinct image IDs (docker images -q repeats an ID
// for each of its tags).
func imageIDs(t *testing.T, d *testenv.Daemon) []string {
	t.Helper()
	var out []string
	for _, id := range strings.Fields(d.DockerOK(t, "images", "-q", "--no-trunc")) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// eventsUntilNow lists the daemon's remembered events of a type, one
// formatted line each.
func eventsUntilNow(t *testing.T, d *testenv.Daemon, filter, format string) string {
	t.Helper()
	now := time.Now()
	return d.DockerOK(t, "events", "--since", "0", "--until", fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()), "--filter", filter, "--format", format)
}

func TestImageLoadListInspectHistory(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	archive, id := testenv.BusyboxArchive(t)
	out := d.DockerOK(t, "load", "-i", archive)
	assert.Check(t, is.Contains(out, "Loaded image: busybox:latest"))

	out = d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	assert.Check(t, is.Contains(out, "busybox:latest "+id[7:19]))

	var inspect []map[string]any
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "image", "inspect", "busybox")), &inspect))
	assert.Assert(t, is.Len(inspect, 1))
	img := inspect[0]
	assert.Equal(t, img["Id"], id)
	assert.DeepEqual(t, img["RepoTags"], []any{"busybox:latest"})
	assert.Equal(t, img["Os"], "linux")
	assert.Equal(t, img["Architecture"], "amd64")
	assert.Equal(t, img["GraphDriver"].(map[string]any)["Name"], "overlay")
	assert.Check(t, img["Size"].(float64) > 1e6)
	cfg := img["Config"].(map[string]any)
	assert.DeepEqual(t, cfg["Cmd"], []any{"sh"})
	rootfs := img["RootFS"].(map[string]any)
	assert.Equal(t, rootfs["Type"], "layers")
	assert.Check(t, is.Len(rootfs["Layers"], 1))

	// by ID, by short ID, by sha256:prefix
	for _, ref := range []string{id, id[7:], id[7:19], "sha256:" + id[7:15]} {
		assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", ref)), id), ref)
	}

	out = d.DockerOK(t, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}", "busybox")
	assert.Check(t, is.Contains(out, id+"|testimage: host busybox"))

	// /info counts it
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.Images}}")), "1")
}

func TestImageTagAndRemove(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := d.LoadBusybox(t)
	short := id[7:19]
	d.DockerOK(t, "tag", "busybox", "example.com/team/box:v1")
	d.DockerOK(t, "tag", "busybox:latest", "mybox")
	out := d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, want := range []string{"busybox:latest", "example.com/team/box:v1", "mybox:latest"} {
		assert.Check(t, is.Contains(out, want))
	}

	// removing one of several names only untags
	out = d.DockerOK(t, "rmi", "mybox")
	assert.Check(t, is.Equal(strings.TrimSpace(out), "Untagged: mybox:latest"))
	assert.Check(t, is.Len(imageIDs(t, d), 1))

	// an ID with names in several repositories needs force
	r := d.Docker("rmi", short)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories"))

	code, body := apiCall(t, d, "DELETE", "/images/"+short, nil)
	assert.Check(t, is.Equal(code, http.StatusConflict))
	assert.Check(t, is.Contains(body, "must be forced"))

	// bad tags
	r = d.Docker("tag", "busybox", "UPPER")
	assert.Check(t, r.ExitCode != 0)
	code, body = apiCall(t, d, "POST", "/images/busybox/tag?repo=UPPER&tag=x", nil)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(body, "must be lowercase"))
	code, body = apiCall(t, d, "POST", "/images/nope/tag?repo=x&tag=y", nil)
	assert.Check(t, is.Equal(code, http.StatusNotFound))
	assert.Check(t, is.Contains(body, "No such image: nope"))

	out = d.DockerOK(t, "rmi", "-f", short)
	assert.Check(t, is.Contains(out, "Untagged: busybox:latest"))
	assert.Check(t, is.Contains(out, "Untagged: example.com/team/box:v1"))
	assert.Check(t, is.Contains(out, "Deleted: "+id))
	assert.Check(t, is.Len(imageIDs(t, d), 0))

	// the last name of an image deletes it
	d.LoadBusybox(t)
	out = d.DockerOK(t, "rmi", "busybox")
	assert.Check(t, is.Contains(out, "Untagged: busybox:latest"))
	assert.Check(t, is.Contains(out, "Deleted: "+id))

	// events
	out = eventsUntilNow(t, d, "type=image", "{{.Action}}")
	for _, a := range []string{"load", "tag", "untag", "delete"} {
		assert.Check(t, is.Contains(out, a))
	}
}

func TestImageListFilters(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	p, labelled := testenv.Image(t, testimage.Options{Tag: "labelled:1", Labels: map[string]string{"tier": "db"}, Comment: "labelled"})
	d.DockerOK(t, "load", "-q", "-i", p)
	d.DockerOK(t, "tag", "busybox", "127.0.0.1:5000/library/busybox:x")

	cases := []struct {
		filter string
		want   []string
	}{
		{"reference=busybox", []string{"busybox:latest"}},
		{"reference=busy*", []string{"busybox:latest"}},
		{"reference=*/library/busybox*", []string{"127.0.0.1:5000/library/busybox:x"}},
		{"reference=labelled:1", []string{"labelled:1"}},
		{"label=tier=db", []string{"labelled:1"}},
		{"label=tier", []string{"labelled:1"}},
		{"dangling=true", nil},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			out := d.DockerOK(t, "images", "--filter", tc.filter, "--format", "{{.Repository}}:{{.Tag}}")
			got := strings.Fields(out)
			if len(tc.want) == 0 {
				assert.Check(t, is.Len(got, 0), out)
				return
			}
			for _, w := range tc.want {
				assert.Check(t, is.Contains(got, w), out)
			}
			assert.Check(t, is.Len(got, len(tc.want)), out)
		})
	}
	code, body := apiCall(t, d, "GET", "/images/json?filters="+url.QueryEscape(`{"nope":{"x":true}}`), nil)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(body, "invalid filter 'nope'"))

	// untagging the labelled image leaves it dangling; prune removes it
	d.DockerOK(t, "rmi", "-f", "labelled:1")
	d.DockerOK(t, "load", "-q", "-i", p)
	d.DockerOK(t, "tag", "labelled:1", "labelled:2")
	d.DockerOK(t, "rmi", "labelled:1")
	d.DockerOK(t, "tag", "busybox", "labelled:2") // moves the name away: labelled image is dangling
	out := d.DockerOK(t, "images", "-q", "--no-trunc", "--filter", "dangling=true")
	assert.Check(t, is.Equal(strings.TrimSpace(out), labelled))
	out = d.DockerOK(t, "image", "prune", "-f")
	assert.Check(t, is.Contains(out, "deleted: "+labelled))
	assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "images", "-q", "--filter", "dangling=true")), 0))
	// prune -a removes the rest (no container uses them)
	d.DockerOK(t, "image", "prune", "-af")
	assert.Check(t, is.Len(imageIDs(t, d), 0))
}

func TestImageSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := d.LoadBusybox(t)
	d.DockerOK(t, "tag", "busybox", "busybox:two")
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.tar")
	d.DockerOK(t, "save", "-o", saved, "busybox")
	d.DockerOK(t, "rmi", "-f", id)
	assert.Check(t, is.Len(imageIDs(t, d), 0))

	out := d.DockerOK(t, "load", "-i", saved)
	assert.Check(t, is.Contains(out, "Loaded image: busybox:latest"))
	assert.Check(t, is.Contains(out, "Loaded image: busybox:two"))
	assert.DeepEqual(t, imageIDs(t, d), []string{id})

	// the API form with several names, and by ID (untagged)
	code, body := apiCall(t, d, "GET", "/images/get?names=busybox:two&names="+id[7:19], nil)
	assert.Check(t, is.Equal(code, http.StatusOK))
	assert.Check(t, strings.Contains(body, "manifest.json"))
	code, body = apiCall(t, d, "GET", "/images/nope/get", nil)
	assert.Check(t, is.Equal(code, http.StatusNotFound))
	assert.Check(t, is.Contains(body, "No such image: nope"))
}

func TestImageLoadOCIArchive(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	p := filepath.Join(t.TempDir(), "oci.tar")
	res, err := testimage.WriteOCIArchive(p, "ocibox:1.0", testimage.Options{
		Labels: map[string]string{"org.example": "yes"}, Env: []string{"A=b"}, WorkingDir: "/srv",
		User: "www-data", ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/data"},
		StopSignal: "SIGQUIT", Healthcheck: []string{"CMD", "true"}, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"},
	})
	assert.NilError(t, err)
	out := d.DockerOK(t, "load", "-i", p)
	assert.Check(t, is.Contains(out, "Loaded image: ocibox:1.0"))
	var cfg map[string]any
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "image", "inspect", "-f", "{{json .Config}}", "ocibox:1.0")), &cfg))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "ocibox:1.0")), res.ImageID)
	assert.DeepEqual(t, cfg["Env"], []any{"A=b"})
	assert.Equal(t, cfg["WorkingDir"], "/srv")
	assert.Equal(t, cfg["User"], "www-data")
	assert.Equal(t, cfg["StopSignal"], "SIGQUIT")
	assert.DeepEqual(t, cfg["Entrypoint"], []any{"/bin/sh", "-c"})
	assert.DeepEqual(t, cfg["Labels"], map[string]any{"org.example": "yes"})
	assert.Check(t, is.Contains(cfg, "ExposedPorts"))
	assert.Check(t, is.Contains(cfg, "Volumes"))
	assert.Check(t, is.Contains(cfg, "Healthcheck"))
}

func TestImageLoadNotAnImage(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	p := filepath.Join(t.TempDir(), "junk.tar")
	f, err := os.Create(p)
	assert.NilError(t, err)
	tw := tar.NewWriter(f)
	body := []byte("just a file\n")
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
	_, _ = tw.Write(body)
	assert.NilError(t, tw.Close())
	assert.NilError(t, f.Close())

	r := d.Docker("load", "-i", p)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "not an image archive"))
	assert.Check(t, is.Len(imageIDs(t, d), 0))

	code, msg := apiCall(t, d, "POST", "/images/load", strings.NewReader("this is not a tar file at all, not even close............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"))
	assert.Check(t, is.Equal(code, http.StatusOK), "as dockerd: the error is in the stream")
	assert.Check(t, is.Contains(msg, "invalid image archive"))
	assert.Check(t, is.Len(imageIDs(t, d), 0))
	leftovers, _ := os.ReadDir(filepath.Join(d.DataRoot, "tmp"))
	assert.Check(t, is.Len(leftovers, 0))
}

func TestImageErrors(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	cases := []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/images/nope/json", 404, "No such image: nope"},
		{"GET", "/v1.41/images/nope:1/json", 404, "No such image: nope:1"},
		{"GET", "/images/nope/history", 404, "No such image: nope"},
		{"DELETE", "/images/nope", 404, "No such image: nope"},
		{"POST", "/images/create?fromImage=UPPER&tag=case", 400, "invalid reference format: repository name (library/UPPER) must be lowercase"},
		{"POST", "/images/create?fromImage=a%20b", 400, "invalid reference format"},
		{"POST", "/images/create?fromSrc=http://127.0.0.1:1/x.tar", 501, "not from a URL"},
		{"POST", "/images/create?fromSrc=-&repo=Bad", 400, "invalid reference format"},
		{"GET", "/images/json?filters=notjson", 400, "invalid filter"},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			code, body := apiCall(t, d, tc.method, tc.path, nil)
			assert.Check(t, is.Equal(code, tc.status), body)
			assert.Check(t, is.Contains(body, tc.msg))
		})
	}
	r := d.Docker("image", "inspect", "nope")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "No such image: nope"))
}

func TestImagePullFromRegistry(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	d := testenv.StartDaemon(t)
	ref := reg.Addr + "/library/busybox"

	r := d.Docker("pull", ref)
	assert.Assert(t, r.ExitCode == 0, r.Combined())
	out := r.Stdout()
	assert.Check(t, is.Contains(out, "latest: Pulling from library/busybox"))
	assert.Check(t, is.Contains(out, "Pull complete"))
	assert.Check(t, is.Contains(out, "Digest: sha256:"))
	assert.Check(t, is.Contains(out, "Status: Downloaded newer image for "+ref+":latest"))
	assert.DeepEqual(t, imageIDs(t, d), []string{id})

	var digests []string
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "image", "inspect", "-f", "{{json .RepoDigests}}", ref)), &digests))
	assert.Assert(t, is.Len(digests, 1))
	assert.Check(t, strings.HasPrefix(digests[0], ref+"@sha256:"))

	out = d.DockerOK(t, "pull", ref)
	assert.Check(t, is.Contains(out, "Status: Image is up to date for "+ref+":latest"))

	// the raw stream carries Docker's progress messages
	code, body := apiCall(t, d, "POST", "/images/create?fromImage="+url.QueryEscape(ref)+"&tag=latest", nil)
	assert.Check(t, is.Equal(code, 200))
	assert.Check(t, is.Contains(body, `{"status":"Pulling from library/busybox","id":"latest"}`))

	// pull by digest into a fresh daemon state
	d.DockerOK(t, "rmi", "-f", id)
	out = d.DockerOK(t, "pull", digests[0])
	assert.Check(t, is.Contains(out, "Pulling fs layer"))
	assert.Check(t, is.Contains(out, "Status: Downloaded newer image for "+digests[0]))
	out = d.DockerOK(t, "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}")
	assert.Check(t, is.Contains(out, ref+" <none> "+strings.TrimPrefix(digests[0], ref+"@")+" "+id[7:19]), out)

	// unknown repository and tag: 404 with Docker's message
	r = d.Docker("pull", reg.Addr+"/library/nope")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "manifest for "+reg.Addr+"/library/nope:latest not found"))
	code, body = apiCall(t, d, "POST", "/images/create?fromImage="+url.QueryEscape(ref)+"&tag=nope", nil)
	assert.Check(t, is.Equal(code, http.StatusNotFound), body)
	assert.Check(t, is.Contains(body, "not found"))

	// a platform the image does not have
	r = d.Docker("pull", "--platform", "linux/arm64", ref)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "does not match the specified platform (linux/arm64)"))
	d.DockerOK(t, "pull", "--platform", "linux/amd64", ref)

	// what the registry says, without pulling
	code, body = apiCall(t, d, "GET", "/distribution/"+ref+":latest/json", nil)
	assert.Check(t, is.Equal(code, 200), body)
	assert.Check(t, is.Contains(body, strings.TrimPrefix(digests[0], ref+"@")))
	assert.Check(t, is.Contains(body, `"architecture":"amd64"`))
	code, _ = apiCall(t, d, "GET", "/distribution/"+reg.Addr+"/library/nope/json", nil)
	assert.Check(t, is.Equal(code, 404))

	// pull events
	out = eventsUntilNow(t, d, "event=pull", "{{.Actor.ID}}")
	assert.Check(t, is.Contains(out, ref+":latest"))
}

func TestImagePullRegistryDown(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	// a loopback port that was free a moment ago: nothing answers there
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	down := l.Addr().String()
	l.Close()
	start := time.Now()
	r := d.Docker("pull", down+"/library/busybox")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "registry "+down+" is unreachable"))
	assert.Check(t, is.Contains(r.Stderr(), "connection refused"))
	assert.Check(t, time.Since(start) < 30*time.Second)
	assert.Check(t, is.Len(imageIDs(t, d), 0))
}

func TestImagePullWithAuth(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, true)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	d := testenv.StartDaemon(t)
	ref := reg.Addr + "/library/busybox"

	r := d.Docker("pull", ref)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "authentication required"), r.Combined())
	assert.Check(t, is.Len(imageIDs(t, d), 0))

	r = d.Docker("login", "-u", reg.User, "-p", "wrong", reg.Addr)
	assert.Check(t, r.ExitCode != 0, r.Combined())

	d.DockerOK(t, "login", "-u", reg.User, "-p", reg.Password, reg.Addr)
	out := d.DockerOK(t, "pull", ref)
	assert.Check(t, is.Contains(out, "Status: Downloaded newer image for "+ref+":latest"))
	assert.DeepEqual(t, imageIDs(t, d), []string{id})

	// push back under another name with the same credentials
	d.DockerOK(t, "tag", ref, reg.Addr+"/team/copy:v1")
	out = d.DockerOK(t, "push", reg.Addr+"/team/copy:v1")
	assert.Check(t, is.Contains(out, "v1: digest: sha256:"))
	d.DockerOK(t, "rmi", reg.Addr+"/team/copy:v1")
	out = d.DockerOK(t, "pull", reg.Addr+"/team/copy:v1")
	assert.Check(t, is.Contains(out, reg.Addr+"/team/copy:v1"))

	// every tag of a repository
	d.DockerOK(t, "tag", ref, reg.Addr+"/team/copy:v2")
	out = d.DockerOK(t, "push", "--all-tags", reg.Addr+"/team/copy")
	assert.Check(t, is.Contains(out, "v1: digest: sha256:"))
	assert.Check(t, is.Contains(out, "v2: digest: sha256:"))
	out = d.DockerOK(t, "pull", reg.Addr+"/team/copy:v2")
	assert.Check(t, is.Contains(out, "Image is up to date"))

	// pushing what is not there
	r = d.Docker("push", reg.Addr+"/team/none:v1")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "An image does not exist locally with the tag: "+reg.Addr+"/team/none"))

	// the credentials never reach the daemon's log, even at debug level
	log := d.Log()
	assert.Check(t, !strings.Contains(log, reg.Password))
	assert.Check(t, !strings.Contains(log, "X-Registry-Auth"))
}

// TestImagesDockerPy drives the image endpoints with docker-py.
func TestImagesDockerPy(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, false)
	archive, id := testenv.BusyboxArchive(t)
	reg.Push(t, archive, "library/busybox:latest")
	d := testenv.StartDaemon(t)
	script := `
import sys, docker
c = docker.from_env()
archive, ref, want = sys.argv[1], sys.argv[2], sys.argv[3]
imgs = c.images.load(open(archive, "rb").read())
assert [i.id for i in imgs] == [want], imgs
assert "busybox:latest" in c.images.list()[0].tags
img = c.images.pull(ref, tag="latest")
assert img.id == want, img.id
assert img.attrs["RepoDigests"][0].startswith(ref + "@sha256:"), img.attrs
assert img.history()[0]["Id"] == want
img.tag("py/box", "1")
assert c.images.get("py/box:1").id == want
c.images.remove("py/box:1")
try:
    c.images.get("nope")
    raise SystemExit("found nope")
except docker.errors.ImageNotFound as e:
    assert "No such image: nope" in str(e), e
try:
    c.images.pull(ref, tag="nope")
    raise SystemExit("pulled nope")
except docker.errors.NotFound:
    pass
data = b"".join(c.images.get("busybox").save())
assert len(data) > 1000000
print("ok")
`
	out := d.DockerPy(t, script, archive, reg.Addr+"/library/busybox", id)
	assert.Check(t, is.Contains(out, "ok"))
}

// TestImageRemoveInUse: images that containers use need force, as in dockerd.
func TestImageRemoveInUse(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := d.LoadBusybox(t)
	short := id[7:19]
	cid := strings.TrimSpace(d.DockerOK(t, "create", "busybox"))

	r := d.Docker("rmi", "busybox")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), `conflict: unable to remove repository reference "busybox" (must force) - container `+cid[:12]+` is using its referenced image `+short))
	r = d.Docker("rmi", short)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "conflict: unable to delete "+short+" (must be forced) - image is being used by stopped container "+cid[:12]))
	code, _ := apiCall(t, d, "DELETE", "/images/busybox", nil)
	assert.Check(t, is.Equal(code, http.StatusConflict))

	// forced: the name goes, the image stays for the container (dangling)
	out := d.DockerOK(t, "rmi", "-f", "busybox")
	assert.Check(t, is.Contains(out, "Untagged: busybox:latest"))
	assert.DeepEqual(t, imageIDs(t, d), []string{id})
	// prune keeps what a container uses
	d.DockerOK(t, "image", "prune", "-af")
	assert.DeepEqual(t, imageIDs(t, d), []string{id})

	d.DockerOK(t, "rm", cid)
	out = d.DockerOK(t, "image", "prune", "-f")
	assert.Check(t, is.Contains(out, "deleted: "+id))
	assert.Check(t, is.Len(imageIDs(t, d), 0))
}
