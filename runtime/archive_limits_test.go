package runtime

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type entry struct {
	name, link string
	typ        byte
	data       string
}

func makeTar(t testing.TB, entries ...entry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		assert.NilError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.data)[:h.Size])
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

// The guard passes the archive on byte for byte, long names (PAX) and
// trailer included.
func TestGuardedTarPassesThrough(t *testing.T) {
	long := strings.Repeat("d", 150) + "/" + strings.Repeat("f", 120)
	in := makeTar(t,
		entry{name: "dir/", typ: tar.TypeDir},
		entry{name: "dir/f", data: strings.Repeat("x", 70_000)},
		entry{name: long, data: "long name"},
		entry{name: "dir/l", typ: tar.TypeSymlink, link: "f"},
		entry{name: "dir/h", typ: tar.TypeLink, link: "dir/f"},
		entry{name: "empty"},
	)
	out, err := io.ReadAll(newGuardedTar(bytes.NewReader(in), t.TempDir()))
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(out, in), "got %d bytes, want %d", len(out), len(in))
}

func TestGuardedTarCreatedAndRollback(t *testing.T) {
	dest := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(dest, "old"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dest, "old", "kept"), []byte("before"), 0o644))
	in := makeTar(t,
		entry{name: "old/", typ: tar.TypeDir},
		entry{name: "old/kept", data: "replaced"},
		entry{name: "old/new", data: "n"},
		entry{name: "newdir/", typ: tar.TypeDir},
		entry{name: "newdir/a", data: "a"},
		entry{name: "newdir/sub/", typ: tar.TypeDir},
		entry{name: "newdir/sub/b", data: "b"},
		entry{name: "../../escape", data: "e"},
	)
	g := newGuardedTar(bytes.NewReader(in), dest)
	_, err := io.ReadAll(g)
	assert.NilError(t, err)
	// only the frontier of what is new: below a new directory goes with it
	assert.DeepEqual(t, g.created, []string{filepath.Join(dest, "old", "new"), filepath.Join(dest, "newdir"), filepath.Join(dest, "escape")})

	// a failed extraction takes back what it created
	assert.NilError(t, os.WriteFile(filepath.Join(dest, "old", "new"), []byte("n"), 0o644))
	assert.NilError(t, os.MkdirAll(filepath.Join(dest, "newdir", "sub"), 0o755))
	cause := errors.New("archive broke")
	err = g.rollback(cause)
	assert.Check(t, errors.Is(err, cause))
	assert.ErrorContains(t, err, "what the copy had created was removed")
	assert.DeepEqual(t, entryNames(t, dest), []string{"old"})
	assert.DeepEqual(t, entryNames(t, filepath.Join(dest, "old")), []string{"kept"})

	// nothing created: the error is unchanged
	empty := newGuardedTar(bytes.NewReader(nil), dest)
	assert.Equal(t, empty.rollback(cause), cause)
}

func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestCheckSpace(t *testing.T) {
	fs := func(blocks, avail, files, ffree uint64) *unix.Statfs_t {
		return &unix.Statfs_t{Bsize: 4096, Blocks: blocks, Bavail: avail, Files: files, Ffree: ffree}
	}
	hdr := func(size int64) *tar.Header { return &tar.Header{Name: "f", Size: size} }
	const gib = 1 << 30
	cases := []struct {
		name string
		fs   *unix.Statfs_t
		hdr  *tar.Header
		ok   bool
	}{
		{"fits", fs(25_600, 12_800, 1000, 500), hdr(1 << 20), true},
		{"too big", fs(25_600, 256, 1000, 500), hdr(2 << 20), false},
		{"eats the 1% reserve", fs(25_600, 300, 1000, 500), hdr(300*4096 - 1000), false},
		{"reserve capped at 256 MiB", fs(100*gib/4096, (300<<20)/4096, 1e6, 5e5), hdr(40 << 20), true},
		{"past the cap", fs(100*gib/4096, (300<<20)/4096, 1e6, 5e5), hdr(50 << 20), false},
		{"no inodes left", fs(25_600, 12_800, 1000, 10), hdr(0), false},
		{"no inode count", fs(25_600, 12_800, 0, 0), hdr(0), true},
		{"no block count", fs(0, 0, 0, 0), hdr(1 << 40), true},
	}
	for _, tc := range cases {
		err := checkSpace(tc.fs, tc.hdr)
		if tc.ok {
			assert.Check(t, err, tc.name)
			continue
		}
		assert.Check(t, errdefs.IsResourceExhausted(err), "%s: %v", tc.name, err)
		assert.Check(t, is.ErrorContains(err, "no space left on device"), tc.name)
	}
}

func TestDecompressUpload(t *testing.T) {
	plain := makeTar(t, entry{name: "f", data: strings.Repeat("compress me ", 1000)})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	zw.Close()
	var zst bytes.Buffer
	ze, err := zstd.NewWriter(&zst)
	assert.NilError(t, err)
	_, _ = ze.Write(plain)
	ze.Close()
	tool := func(name string, args ...string) []byte {
		cmd := exec.Command(name, args...)
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		assert.NilError(t, err, name)
		return out
	}
	for name, in := range map[string][]byte{
		"plain": plain, "gzip": gz.Bytes(), "zstd": zst.Bytes(),
		"bzip2": tool("bzip2", "-c"), "xz": tool("xz", "-c"),
	} {
		r, err := decompressUpload(bytes.NewReader(in))
		assert.NilError(t, err, name)
		out, err := io.ReadAll(r)
		assert.NilError(t, err, name)
		assert.NilError(t, r.Close())
		assert.Check(t, bytes.Equal(out, plain), name)
	}

	// a zstd frame that asks for a window past the limit is refused, not
	// given the memory
	big := tool("zstd", "-c", "--long=30", "--ultra", "-22")
	r, err := decompressUpload(bytes.NewReader(big))
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	assert.ErrorContains(t, err, "window")

	// an xz stream beyond the memory limit: xz says so
	xzBig := tool("xz", "-c", "--lzma2=dict=1536MiB")
	r, err = decompressUpload(bytes.NewReader(xzBig))
	assert.NilError(t, err)
	_, err = io.ReadAll(r)
	r.Close()
	assert.ErrorContains(t, err, "xz")
}

// FuzzGuardedUpload feeds arbitrary bytes through what PUT
// /containers/{id}/archive puts before the extractor: compression
// detection, decompression and the guard. It must not panic, must pass on
// exactly the bytes it parsed, and must only ever note paths inside the
// extraction directory. (The extraction itself runs chrooted in a
// container's filesystem view; it is not fuzzed on the host.)
func FuzzGuardedUpload(f *testing.F) {
	f.Add(makeTar(f, entry{name: "a/", typ: tar.TypeDir}, entry{name: "a/b", data: "x"}))
	f.Add(makeTar(f, entry{name: "../../../etc/x", data: "x"}, entry{name: "l", typ: tar.TypeSymlink, link: "/etc"}))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(makeTar(f, entry{name: "z", data: "zz"}))
	zw.Close()
	f.Add(gz.Bytes())
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte("BZh91AY&SY"))
	f.Add([]byte{})
	dest := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		stuck := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("stuck on %q", data)) })
		defer stuck.Stop()
		r, err := decompressUpload(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer r.Close()
		var seen bytes.Buffer
		g := newGuardedTar(io.TeeReader(r, &seen), dest)
		out, _ := io.ReadAll(io.LimitReader(g, 4<<20))
		if !bytes.HasPrefix(seen.Bytes(), out) {
			t.Fatalf("the guard gave out %d bytes that are not what it read", len(out))
		}
		for _, p := range g.created {
			if p != dest && !strings.HasPrefix(p, dest+"/") {
				t.Fatalf("noted %s, outside %s", p, dest)
			}
		}
	})
}
