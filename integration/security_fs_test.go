package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// End-to-end tests of paths a container can change (berth issue 13): each
// reproduces an attack the way a container or a client would make it.

// hostCanary is a host directory with a secret file, which no container
// may read or write through a path it controls.
func hostCanary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("host secret\n"), 0o600))
	return dir
}

func assertCanaryUntouched(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Check(t, is.DeepEqual(names, []string{"secret"}), "the host directory was written to")
	b, err := os.ReadFile(filepath.Join(dir, "secret"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "host secret\n"))
}

// A volume subpath that a container made a symlink out of the volume is
// refused at start and at docker cp, in dockerd's words; it never gives
// the host's files to cp (issue 13 item 1). A subpath symlink that stays
// in the volume works.
func TestSecurityVolumeSubpathSymlink(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	canary := hostCanary(t)
	// the name of a file cp must not write on the host's /
	pwned := "berth-pwned-" + filepath.Base(filepath.Dir(canary))
	t.Cleanup(func() { _ = os.Remove("/" + pwned) })
	d.DockerOK(t, "volume", "create", "vv")
	d.DockerOK(t, "run", "--rm", "-v", "vv:/v", "busybox", "sh", "-c",
		"ln -s / /v/root && ln -s "+canary+" /v/abs && ln -s ../../../../../../.."+canary+" /v/rel && mkdir /v/real && echo inside > /v/real/f && ln -s real /v/good")

	for _, sub := range []string{"root", "abs", "rel"} {
		t.Run(sub, func(t *testing.T) {
			name := "victim-" + sub
			d.DockerOK(t, "create", "--name", name, "--mount", "type=volume,src=vv,dst=/data,volume-subpath="+sub, "busybox", "cat", "/data/secret")

			// docker cp out of it: refused, never the host's file
			r := d.Docker("cp", name+":/data/secret", "-")
			assert.Check(t, r.ExitCode != 0, "cp from: %s", r.Stdout())
			assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
			assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			r = d.Docker("cp", name+":/data/etc/hostname", "-")
			assert.Check(t, r.ExitCode != 0)
			hostname, _ := os.ReadFile("/etc/hostname")
			assert.Check(t, len(hostname) == 0 || !strings.Contains(r.Stdout(), strings.TrimSpace(string(hostname))))

			// docker cp into it: refused, nothing written on the host
			src := filepath.Join(t.TempDir(), pwned)
			assert.NilError(t, os.WriteFile(src, []byte("x"), 0o644))
			r = d.Docker("cp", src, name+":/data/"+pwned)
			assert.Check(t, r.ExitCode != 0)
			assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			code, body := streamsAPI(t, d, http.MethodPut, "/containers/"+name+"/archive?path=/data", bytes.NewReader(oneFileTar(t, pwned)))
			assert.Check(t, is.Equal(code, http.StatusBadRequest), body)
			assert.Check(t, is.Contains(body, "path concatenation escapes the base directory"))

			// start: refused with the same words, a second time too
			for range 2 {
				r = d.Docker("start", "-a", name)
				assert.Check(t, r.ExitCode != 0)
				assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
				assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
			}
			d.DockerOK(t, "rm", name)
		})
	}
	assertCanaryUntouched(t, canary)
	_, err := os.Stat("/" + pwned)
	assert.Check(t, os.IsNotExist(err))

	// a symlink that stays in the volume is followed, at start and for cp
	d.DockerOK(t, "create", "--name", "good", "--mount", "type=volume,src=vv,dst=/data,volume-subpath=good", "busybox", "cat", "/data/f")
	assert.Equal(t, d.DockerOK(t, "cp", "good:/data/f", "-") != "", true)
	d.DockerOK(t, "start", "good")
	assert.Equal(t, d.DockerOK(t, "wait", "good"), "0\n")
	assert.Equal(t, d.DockerOK(t, "logs", "good"), "inside\n")
	// a missing subpath is refused, as dockerd does
	d.DockerOK(t, "create", "--name", "missing", "--mount", "type=volume,src=vv,dst=/data,volume-subpath=nope", "busybox", "true")
	r := d.Docker("start", "missing")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr(), "cannot access path"))
}

// swapperSource is a static program a container runs to race the daemon:
// once path a exists, it makes b a symlink to target and exchanges a and b
// (renameat2 RENAME_EXCHANGE) as fast as it can, so each of them is a
// directory and a symlink in turn, all the time.
const swapperSource = `package main

import (
	"os"
	"syscall"
	"unsafe"
)

func main() {
	a, b, target := os.Args[1], os.Args[2], os.Args[3]
	for {
		if _, err := os.Lstat(a); err == nil {
			break
		}
	}
	os.Symlink(target, b)
	pa, _ := syscall.BytePtrFromString(a)
	pb, _ := syscall.BytePtrFromString(b)
	atFdcwd := -100
	for {
		syscall.Syscall6(316, uintptr(atFdcwd), uintptr(unsafe.Pointer(pa)), uintptr(atFdcwd), uintptr(unsafe.Pointer(pb)), 2, 0)
	}
}
`

var (
	swapperOnce sync.Once
	swapperBin  string
	swapperErr  error
)

// swapper builds swapperSource once per test process, into the
// checkout's bin/ (beside berthd), named by the source's hash so that
// later runs reuse it.
func swapper(t *testing.T) string {
	t.Helper()
	swapperOnce.Do(func() {
		sum := sha256.Sum256([]byte(swapperSource))
		bin := filepath.Join(testenv.RepoRoot(), "bin", "test-swapper-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(bin); err == nil {
			swapperBin = bin
			return
		}
		dir, err := os.MkdirTemp(filepath.Dir(bin), "test-swapper-build-")
		if err != nil {
			swapperErr = err
			return
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(swapperSource), 0o644); err != nil {
			swapperErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", "swapper", "main.go")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			swapperErr = fmt.Errorf("build swapper: %v\n%s", err, out)
			return
		}
		// a rename: a concurrent run sees the whole binary or none
		if err := os.Rename(filepath.Join(dir, "swapper"), bin); err != nil {
			swapperErr = err
			return
		}
		swapperBin = bin
	})
	if swapperErr != nil {
		t.Fatal(swapperErr)
	}
	return swapperBin
}

// Copy-up fills a new empty volume from the image while another container
// using the same volume exchanges each directory copy-up makes with a
// symlink to a host directory, in a loop: nothing is written, chmodded or
// chowned in the host directory (issue 13 item 2). The copy may fail; the
// host stays as it was.
func TestSecurityCopyUpSymlinkRace(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	canary := hostCanary(t)
	assert.NilError(t, os.Chmod(canary, 0o700))
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("data/dir/f%03d", i)] = "image file"
		files[fmt.Sprintf("data/dir/sub/g%03d", i)] = "image file"
	}
	img, _ := testenv.Image(t, testimage.Options{Tag: "cuimg:latest", Files: files})
	d.DockerOK(t, "load", "-q", "-i", img)
	sw := swapper(t)

	for i := range 8 {
		d.DockerOK(t, "volume", "create", "shared")
		// the attacker plants a symlink to the host directory and swaps it
		// with what copy-up makes: the top directory, or the one below
		victim := []string{"/v/dir", "/v/dir/sub"}[i%2]
		// (it waits for copy-up to begin: copy-up only fills an empty volume)
		d.DockerOK(t, "run", "-d", "--name", "attacker", "-v", sw+":/swapper:ro", "-v", "shared:/v", "busybox",
			"/swapper", victim, "/v/lnk", canary)
		r := d.Docker("run", "--rm", "-v", "shared:/data", "cuimg", "true")
		t.Logf("copy-up %d (%s): exit %d %s", i, victim, r.ExitCode, strings.TrimSpace(r.Stderr()))
		d.DockerOK(t, "rm", "-f", "attacker")
		d.DockerOK(t, "volume", "rm", "shared")
	}
	assertCanaryUntouched(t, canary)
	var st syscall.Stat_t
	assert.NilError(t, syscall.Stat(canary, &st))
	assert.Check(t, is.Equal(st.Mode&0o7777, uint32(0o700)), "mode of the host directory")
	assert.Check(t, is.Equal(st.Uid, uint32(0)), "owner of the host directory")

	// without an attacker, copy-up still copies
	out := d.DockerOK(t, "run", "--rm", "-v", "quiet:/data", "cuimg", "sh", "-c", "ls /data/dir | wc -l; cat /data/dir/sub/g299")
	assert.Equal(t, out, "301\nimage file")
}

// docker cp of a running container whose process exchanges a parent of a
// mount destination with a symlink to a host directory, in a loop: the
// view never creates or mounts anything on the host, and never reads from
// it (issue 13 item 3). Before, the view made the mount point, by path,
// in the host directory.
func TestSecurityCopyViewRace(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	canary := hostCanary(t)
	sw := swapper(t)
	// /mnt/a/vol is a volume's mount point; /mnt/a is exchanged with a
	// symlink to the host directory as fast as the container can
	d.DockerOK(t, "run", "-d", "--name", "racer", "-v", sw+":/swapper:ro", "-v", "racevol:/mnt/a/vol", "busybox",
		"sh", "-c", "echo in-volume > /mnt/a/vol/f; exec /swapper /mnt/a /mnt/b "+canary)
	src := filepath.Join(t.TempDir(), "up")
	assert.NilError(t, os.WriteFile(src, []byte("copied\n"), 0o644))
	ok := 0
	for i := range 40 {
		// what a copy reads while the container moves its own files
		// around is the container's business (it may be empty); it is
		// never the host's
		r := d.Docker("cp", "racer:/mnt/a/vol/f", "-")
		if r.ExitCode == 0 {
			ok++
		}
		assert.Check(t, !strings.Contains(r.Stdout(), "host secret"), "copy %d", i)
		d.Docker("cp", src, "racer:/mnt/a/vol/up")
		d.Docker("cp", src, "racer:/mnt/a/")
	}
	t.Logf("%d of 40 copies out succeeded", ok)
	assertCanaryUntouched(t, canary)
	// the container is still fine, and a quiet container copies normally
	d.DockerOK(t, "rm", "-f", "racer")
	d.DockerOK(t, "create", "--name", "calm", "-v", "racevol:/mnt/a/vol", "busybox")
	d.DockerOK(t, "cp", src, "calm:/mnt/a/vol/up2")
	assert.Equal(t, d.DockerOK(t, "run", "--rm", "-v", "racevol:/v", "busybox", "cat", "/v/f", "/v/up2"), "in-volume\ncopied\n")
}

// docker cp into a filesystem it would fill: an entry that does not fit is
// refused before any of it is written, in a clear error, and what the copy
// had created is taken back; a gzip bomb is refused the same way (issue
// 13 item 7). Before, the copy filled the filesystem and left a
// half-written file.
func TestSecurityCopyIntoFullFilesystem(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m", "small")
	d.DockerOK(t, "run", "-d", "--name", "running", "-v", "small:/small", "busybox", "sleep", "1000")
	d.DockerOK(t, "create", "--name", "stopped", "-v", "small:/small", "busybox")

	payload := filepath.Join(t.TempDir(), "payload")
	assert.NilError(t, os.MkdirAll(payload, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(payload, "a.txt"), []byte("small\n"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(payload, "big.bin"), bytes.Repeat([]byte{0}, 4<<20), 0o644))
	// a 4 MiB file of zeros in a few KiB of gzip
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "bomb/", Typeflag: tar.TypeDir, Mode: 0o755}))
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "bomb/zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4 << 20}))
	_, err := tw.Write(make([]byte, 4<<20))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	var bomb bytes.Buffer
	gz := gzip.NewWriter(&bomb)
	_, _ = gz.Write(tb.Bytes())
	assert.NilError(t, gz.Close())

	for _, ctr := range []string{"running", "stopped"} {
		for range 2 {
			r := d.Docker("cp", payload, ctr+":/small/")
			assert.Check(t, r.ExitCode != 0, ctr)
			assert.Check(t, is.Contains(r.Stderr(), "no space left on device"), ctr)
			assert.Check(t, is.Contains(r.Stderr(), "big.bin"), ctr)
			code, body := streamsAPI(t, d, http.MethodPut, "/containers/"+ctr+"/archive?path=/small", bytes.NewReader(bomb.Bytes()))
			assert.Check(t, is.Equal(code, http.StatusServiceUnavailable), body)
			assert.Check(t, is.Contains(body, "no space left on device: bomb/zeros (4194304 bytes) does not fit"), body)
			// nothing of either copy stayed, nothing half-written
			assert.Equal(t, d.DockerOK(t, "exec", "running", "ls", "-A", "/small"), "", ctr)
		}
	}
	// what fits is copied
	d.DockerOK(t, "cp", filepath.Join(payload, "a.txt"), "stopped:/small/")
	assert.Equal(t, d.DockerOK(t, "exec", "running", "cat", "/small/a.txt"), "small\n")
}

// A bind of a path inside a volume is a path a container can change: when
// a container made a part of it a symlink to the host, the start and
// docker cp refuse it in dockerd's words instead of following it on the
// host (issue 13 item 1, "every mount source that lives inside a
// container-writable tree"). A bind inside a volume that stays inside
// works.
func TestSecurityBindInsideVolume(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	canary := hostCanary(t)
	d.DockerOK(t, "volume", "create", "bv")
	data := filepath.Join(d.DataRoot, "volumes", "bv", "_data")
	d.DockerOK(t, "run", "--rm", "-v", "bv:/v", "busybox", "sh", "-c", "mkdir -p /v/ok && echo ok > /v/ok/f && ln -s "+canary+" /v/evil")

	d.DockerOK(t, "create", "--name", "evil", "-v", data+"/evil:/data", "busybox", "cat", "/data/secret")
	for range 2 {
		r := d.Docker("start", "-a", "evil")
		assert.Check(t, r.ExitCode != 0)
		assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
		assert.Check(t, is.Contains(r.Stderr(), "path concatenation escapes the base directory"))
		r = d.Docker("cp", "evil:/data/secret", "-")
		assert.Check(t, r.ExitCode != 0)
		assert.Check(t, !strings.Contains(r.Stdout(), "host secret"))
	}
	d.DockerOK(t, "rm", "evil")
	assertCanaryUntouched(t, canary)

	out := d.DockerOK(t, "run", "--rm", "-v", data+"/ok:/data", "busybox", "cat", "/data/f")
	assert.Equal(t, out, "ok\n")
	// a missing source inside a volume is made inside it, as Binds do
	d.DockerOK(t, "run", "--rm", "-v", data+"/made/here:/data", "busybox", "touch", "/data/x")
	_, err := os.Stat(filepath.Join(data, "made", "here", "x"))
	assert.NilError(t, err)
}
