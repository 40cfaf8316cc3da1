package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// hostTreeWithSubmount is a host directory with a tmpfs mounted below it,
// to see whether a read-only bind of it is read-only all the way down.
func hostTreeWithSubmount(t *testing.T) string {
	t.Helper()
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	assert.NilError(t, os.Mkdir(sub, 0o755))
	assert.NilError(t, unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	return host
}

// Read-only binds are read-only with what is mounted below them too for
// API >= 1.44 (rro), and at the top only for older clients or with
// bind-recursive=writable; bind-recursive=readonly needs API 1.44 (issue 20
// item 19).
func TestMountsReadOnlyRecursive(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	host := hostTreeWithSubmount(t)
	try := func(api string, args ...string) *icmd.Result {
		cmd := d.Cmd(append([]string{"run", "--rm"}, append(args, "busybox", "sh", "-c", "touch /data/top; touch /data/sub/below && echo below-written")...)...)
		if api != "" {
			cmd.Env = append(cmd.Env, "DOCKER_API_VERSION="+api)
		}
		return icmd.RunCmd(cmd)
	}
	cases := []struct {
		name, api string
		args      []string
		below     bool // the submount is writable
	}{
		{"-v ro", "", []string{"-v", host + ":/data:ro"}, false},
		{"--mount readonly", "", []string{"--mount", "type=bind,src=" + host + ",dst=/data,readonly"}, false},
		{"bind-recursive=readonly", "", []string{"--mount", "type=bind,src=" + host + ",dst=/data,readonly,bind-recursive=readonly,bind-propagation=rprivate"}, false},
		{"bind-recursive=writable", "", []string{"--mount", "type=bind,src=" + host + ",dst=/data,readonly,bind-recursive=writable"}, true},
		{"-v ro, API 1.43", "1.43", []string{"-v", host + ":/data:ro"}, true},
		{"--mount readonly, API 1.43", "1.43", []string{"--mount", "type=bind,src=" + host + ",dst=/data,readonly"}, true},
	}
	for _, tc := range cases {
		for range 2 {
			r := try(tc.api, tc.args...)
			assert.Check(t, is.Contains(r.Stderr(), "touch: /data/top: Read-only file system"), tc.name)
			assert.Check(t, is.Equal(strings.Contains(r.Stdout(), "below-written"), tc.below), "%s: %s %s", tc.name, r.Stdout(), r.Stderr())
		}
	}
	_, err := os.Stat(filepath.Join(host, "top"))
	assert.Check(t, os.IsNotExist(err))

	// a read-only volume too
	d.DockerOK(t, "run", "--rm", "-v", "rov:/v", "busybox", "true")
	r := d.Docker("run", "--rm", "-v", "rov:/v:ro", "busybox", "grep", " /v ", "/proc/self/mountinfo")
	assert.Check(t, is.Contains(r.Stdout(), " ro,"), r.Combined())

	// forcing recursion is newer than 1.43 (conflicting options are
	// refused by the CLI already; the daemon's check is unit-tested)
	body := `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"` + host + `","Target":"/data","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`
	req, err := http.NewRequest(http.MethodPost, "http://berth/v1.43/containers/create", strings.NewReader(body))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/json")
	code, msg := doRequest(t, d, req)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(msg, "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"))
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), "", "nothing left")
}

// A volume subpath mount starts, restarts and is copied to and from, for
// a running and a stopped container; a nested subpath, a file and a
// read-only one too; an empty subpath gets the image's content (as
// dockerd); a missing one is refused at start in dockerd's words (issue 20
// item 19).
func TestMountsVolumeSubpath(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	img, _ := testenv.Image(t, testimage.Options{Tag: "subimg:latest", Files: map[string]string{"data/from-image": "image content"}})
	d.DockerOK(t, "load", "-q", "-i", img)
	d.DockerOK(t, "volume", "create", "sv")
	d.DockerOK(t, "run", "--rm", "-v", "sv:/v", "busybox", "sh", "-c",
		"mkdir -p /v/sub /v/a/b /v/empty && echo sub > /v/sub/f && echo nested > /v/a/b/f && echo file > /v/file && echo top > /v/top")

	sub := func(name, args string) []string {
		return []string{"--mount", "type=volume,src=sv,dst=" + name + ",volume-subpath=" + args}
	}
	id := strings.TrimSpace(d.DockerOK(t, append(append(append([]string{"run", "-d", "--name", "subs"}, sub("/data", "sub")...),
		append(sub("/nested", "a/b"), append(sub("/etc/motd", "file"), sub("/ro", "sub,readonly")...)...)...), "busybox", "sleep", "1000")...))
	out := d.DockerOK(t, "exec", "subs", "sh", "-c", "cat /data/f /nested/f /etc/motd; ls /data; echo x > /data/new; touch /ro/x 2>&1; true")
	assert.Check(t, is.Equal(out, "sub\nnested\nfile\nf\ntouch: /ro/x: Read-only file system\n"))
	// the container sees its subpath only, and writes land in it
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "-v", "sv:/v", "busybox", "cat", "/v/sub/new"), "x\n")

	// docker cp with the subpath mounts, running and stopped
	src := filepath.Join(t.TempDir(), "up")
	assert.NilError(t, os.WriteFile(src, []byte("copied\n"), 0o644))
	for range 2 {
		d.DockerOK(t, "cp", src, "subs:/data/up")
		assert.Equal(t, d.DockerOK(t, "cp", "subs:/nested/f", "-") != "", true)
		r := d.Docker("cp", src, "subs:/ro/up")
		assert.Check(t, is.Contains(r.Stderr(), "mounted volume is marked read-only"))
		d.DockerOK(t, "restart", "-t", "0", "subs")
	}
	d.DockerOK(t, "stop", "-t", "0", "subs")
	d.DockerOK(t, "cp", src, "subs:/nested/up")
	d.DockerOK(t, "start", "subs")
	assert.Equal(t, d.DockerOK(t, "exec", "subs", "cat", "/data/up", "/nested/up"), "copied\ncopied\n")
	// the pins given to runc went once it had made its mounts
	assert.Check(t, is.Len(testenv.MountsUnder(filepath.Join(d.ExecRoot, "pins")), 0))
	pins, _ := os.ReadDir(filepath.Join(d.ExecRoot, "pins"))
	assert.Check(t, is.Len(pins, 0))
	d.DockerOK(t, "rm", "-f", "subs")
	assert.Check(t, is.Len(d.Leftovers(t, id), 0))

	// an empty subpath is filled from the image, as dockerd does
	d.DockerOK(t, "run", "--rm", "--mount", "type=volume,src=sv,dst=/data,volume-subpath=empty", "subimg", "true")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "-v", "sv:/v", "busybox", "sh", "-c", "cat /v/empty/from-image; echo; ls /v"), "image content\na\nempty\nfile\nsub\ntop\n")

	// a missing subpath
	r := d.Docker("run", "--rm", "--mount", "type=volume,src=sv,dst=/data,volume-subpath=nope", "busybox", "true")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "cannot access path "+filepath.Join(d.DataRoot, "volumes", "sv", "_data", "nope")))
	// a subpath is refused before API 1.45
	cmd := d.Cmd("create", "--mount", "type=volume,src=sv,dst=/data,volume-subpath=sub", "busybox")
	cmd.Env = append(cmd.Env, "DOCKER_API_VERSION=1.44")
	r = icmd.RunCmd(cmd)
	assert.Check(t, is.Contains(r.Stderr(), "VolumeOptions.Subpath needs API v1.45 or newer"))
}

// type=image mounts are refused at create with a clear 400, and nothing is
// made (issue 20 item 19).
func TestMountsImageRefused(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	r := d.Docker("run", "--rm", "--mount", "type=image,src=busybox,dst=/img", "busybox", "true")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), `invalid mount config for type "image": image mounts are not supported by berth`))
	body := `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"image","Source":"busybox","Target":"/img"}]}}`
	for version, want := range map[string]string{
		"1.48": "image mounts are not supported by berth",
		"1.47": `Mount type \"Image\" needs API v1.48 or newer`,
	} {
		req, err := http.NewRequest(http.MethodPost, "http://berth/v"+version+"/containers/create", strings.NewReader(body))
		assert.NilError(t, err)
		req.Header.Set("Content-Type", "application/json")
		code, msg := doRequest(t, d, req)
		assert.Check(t, is.Equal(code, http.StatusBadRequest), version)
		assert.Check(t, is.Contains(msg, want), version)
	}
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), "")
}

func doRequest(t *testing.T, d *testenv.Daemon, req *http.Request) (int, string) {
	t.Helper()
	req.Close = true
	resp, err := unixClient(d.Sock).Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// docker cp to or from a path through a file gives dockerd's "not a
// directory", not "Could not find the file" (issue 20 item 20).
func TestMountsCopyNotADirectory(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "create", "--name", "ctr", "busybox")
	out := t.TempDir()
	src := filepath.Join(out, "f")
	assert.NilError(t, os.WriteFile(src, []byte("x"), 0o644))
	for _, args := range [][]string{
		{"cp", "ctr:/etc/passwd/", out},
		{"cp", "ctr:/etc/passwd/x", out},
		{"cp", src, "ctr:/etc/passwd/x/y"},
	} {
		r := d.Docker(args...)
		assert.Check(t, r.ExitCode != 0, args)
		assert.Check(t, is.Contains(r.Stderr(), "not a directory"), args)
		assert.Check(t, !strings.Contains(r.Stderr(), "Could not find the file"), args)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/containers/ctr/archive?path=/etc/passwd/"},
		{http.MethodPut, "/containers/ctr/archive?path=/etc/passwd/"},
		{http.MethodPut, "/containers/ctr/archive?path=/etc/passwd/x"},
	} {
		req, err := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(""))
		assert.NilError(t, err)
		code, msg := doRequest(t, d, req)
		assert.Check(t, is.Equal(code, http.StatusInternalServerError), "%s %s: %s", tc.method, tc.path, msg)
		assert.Check(t, is.Contains(msg, "not a directory"), "%s %s", tc.method, tc.path)
	}
	// a missing path is still "Could not find"
	r := d.Docker("cp", "ctr:/nope/x", out)
	assert.Check(t, is.Contains(r.Stderr(), "Could not find the file /nope/x in container ctr"))
}
