package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

// fuzzTarOf is a tar (gzipped when asked) of regular files named in names,
// one a line; false when a name cannot be in a tar.
func fuzzTarOf(names string, body []byte, gz bool) ([]byte, bool) {
	var buf bytes.Buffer
	var zw *gzip.Writer
	tw := tar.NewWriter(&buf)
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	}
	n := 0
	for _, name := range strings.Split(names, "\n") {
		if name == "" {
			continue
		}
		if tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}) != nil {
			return nil, false
		}
		_, _ = tw.Write(body)
		n++
	}
	if tw.Close() != nil || (zw != nil && zw.Close() != nil) || n == 0 {
		return nil, false
	}
	return buf.Bytes(), true
}

// FuzzIsArchive: ADD's and the build context's sniffing. A tar of at least
// one entry, plain or gzipped, is an archive; a file is never one when it
// cannot be opened.
func FuzzIsArchive(f *testing.F) {
	f.Add([]byte("FROM busybox\n"), "Dockerfile", false)
	f.Add([]byte{0x1f, 0x8b}, "a\nb/c", true)
	f.Add([]byte("BZh9"), "x", false)
	f.Fuzz(func(t *testing.T, raw []byte, names string, gz bool) {
		p := filepath.Join(t.TempDir(), "src")
		assert.NilError(t, os.WriteFile(p, raw, 0o600))
		_ = isArchive(p)
		if data, ok := fuzzTarOf(names, raw, gz); ok {
			assert.NilError(t, os.WriteFile(p, data, 0o600))
			assert.Assert(t, isArchive(p), "a tar of %q is not an archive", names)
		}
		assert.Assert(t, !isArchive(p+".missing"))
	})
}

// listDir is the names in dir.
func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// FuzzUnpackContext: the build context, unpacked as root into a directory
// beside a file of the host. Whatever the bytes, nothing lands beside it
// and that file is untouched; the spool file is gone; errors are
// ErrInvalidArgument; what is not an archive becomes the Dockerfile as is.
func FuzzUnpackContext(f *testing.F) {
	f.Add([]byte("FROM busybox\nRUN true\n"))
	if data, ok := fuzzTarOf("Dockerfile\nsub/file", []byte("FROM scratch\n"), false); ok {
		f.Add(data)
	}
	if data, ok := fuzzTarOf("Dockerfile", []byte("FROM scratch\n"), true); ok {
		f.Add(data)
	}
	for _, hdrs := range [][]tar.Header{
		{{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "link/escape", Typeflag: tar.TypeReg, Mode: 0o644}},
		{{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../outside"}},
		{{Name: "dir", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, {Name: "dir/x", Typeflag: tar.TypeReg}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			assert.NilError(f, tw.WriteHeader(&h))
		}
		assert.NilError(f, tw.Close())
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ctx")
		outside := filepath.Join(parent, "outside")
		assert.NilError(t, os.Mkdir(dir, 0o755))
		assert.NilError(t, os.WriteFile(outside, []byte("host"), 0o600))
		src := filepath.Join(parent, "src")
		assert.NilError(t, os.WriteFile(src, data, 0o600))
		archive := isArchive(src)
		assert.NilError(t, os.Remove(src))

		bld := newBuilder(t, newFake())
		err := bld.unpackContext(bytes.NewReader(data), dir)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)
		}
		assert.DeepEqual(t, listDir(t, parent), []string{"ctx", "outside"})
		fi, lerr := os.Lstat(outside)
		assert.NilError(t, lerr)
		assert.Assert(t, fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600, "outside: %v", fi.Mode())
		b, rerr := os.ReadFile(outside)
		assert.NilError(t, rerr)
		assert.Equal(t, string(b), "host")
		_, serr := os.Lstat(filepath.Join(dir, ".berth-context"))
		assert.Assert(t, os.IsNotExist(serr), "the spool is left: %v", serr)
		if !archive && !compressed(data) && len(data) <= maxLoneDockerfile && !isTarHeader(padded(data)) {
			assert.NilError(t, err)
			assert.DeepEqual(t, listDir(t, dir), []string{"Dockerfile"})
			b, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
			assert.NilError(t, err)
			assert.Assert(t, bytes.Equal(b, data))
		}
	})
}

// compressed says whether data starts with a compression format's magic:
// the context unpacker decompresses it first.
func compressed(data []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(data, magic) {
			return true
		}
	}
	return false
}

// padded is data as the unpacker peeks at it (at least a tar block).
func padded(data []byte) []byte {
	if len(data) >= 512 {
		return data[:512]
	}
	return append(append([]byte(nil), data...), make([]byte, 512-len(data))...)
}

// under: p, cleaned and rooted, is dest or below it
func under(p, dest string) bool {
	p, dest = path.Clean("/"+p), path.Clean("/"+dest)
	return p == dest || strings.HasPrefix(p, strings.TrimSuffix(dest, "/")+"/")
}

// FuzzUnpackInto: ADD of a local archive. Every entry it writes, and every
// hard link's target, is under the destination whatever the archive's
// names ("..", absolute, links).
func FuzzUnpackInto(f *testing.F) {
	for _, hdrs := range [][]tar.Header{
		{{Name: "a/b", Typeflag: tar.TypeReg}, {Name: "d/", Typeflag: tar.TypeDir}},
		{{Name: "../../etc/passwd", Typeflag: tar.TypeReg}, {Name: "/abs", Typeflag: tar.TypeReg}},
		{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../../etc/shadow"}, {Name: "s", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			assert.NilError(f, tw.WriteHeader(&h))
		}
		assert.NilError(f, tw.Close())
		f.Add(buf.Bytes(), "/app")
		f.Add(buf.Bytes(), "rel/../x")
	}
	f.Fuzz(func(t *testing.T, data []byte, dest string) {
		src := filepath.Join(t.TempDir(), "src.tar")
		assert.NilError(t, os.WriteFile(src, data, 0o600))
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		if err := unpackInto(tw, src, dest); err != nil {
			return // refused, or a header the writer would not take
		}
		assert.NilError(t, tw.Close())
		tr := tar.NewReader(&out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			assert.NilError(t, err)
			assert.Assert(t, under(h.Name, dest), "%q lands outside %q", h.Name, dest)
			if h.Typeflag == tar.TypeLink {
				assert.Assert(t, under(h.Linkname, dest), "hard link %q -> %q outside %q", h.Name, h.Linkname, dest)
			}
		}
	})
}

// fuzzFiles serves the image's /etc/passwd and /etc/group to owner();
// an empty one is missing.
type fuzzFiles struct {
	Containers
	files map[string]string
}

func (f fuzzFiles) ArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *container.PathStat, error) {
	content, ok := f.files[p]
	if !ok || content == "" {
		return nil, nil, errdefs.ErrNotFound.WithMessage("Could not find the file " + p)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: path.Base(p), Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return io.NopCloser(&buf), &container.PathStat{Name: path.Base(p)}, nil
}

// FuzzChownLookup: COPY/ADD --chown=user[:group]. Nothing is root; errors
// are ErrInvalidArgument; numbers are taken as they are; a name resolves
// only through a line of the image's file that names it.
func FuzzChownLookup(f *testing.F) {
	const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
	const group = "root:x:0:\nstaff:x:50:app\n"
	for _, s := range []string{"", "app", "app:staff", "1000", "1000:50", "app:50", "nosuch", "app:nosuch", ":", "-1", "0x10", "app:", ":staff"} {
		f.Add(s, passwd, group)
	}
	f.Add("u", "u:x:notanumber:1\n", "")
	f.Fuzz(func(t *testing.T, chown, passwd, group string) {
		r := &build{b: &Builder{ctrs: fuzzFiles{files: map[string]string{"/etc/passwd": passwd, "/etc/group": group}}}}
		got, err := r.owner(context.Background(), "ctr", chown)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", chown, err)
			return
		}
		if chown == "" {
			assert.Equal(t, got, ids{})
			return
		}
		assert.Assert(t, got.uid >= 0 && got.uid <= maxID && got.gid >= 0 && got.gid <= maxID, "%q: ids %+v out of range", chown, got)
		user, grp, hasGroup := strings.Cut(chown, ":")
		named := func(file, name string) bool {
			for _, line := range strings.Split(file, "\n") {
				if strings.HasPrefix(line, name+":") {
					return true
				}
			}
			return false
		}
		if n, err := strconv.Atoi(user); err == nil && n >= 0 {
			assert.Equal(t, got.uid, n, "%q", chown)
			if !hasGroup {
				assert.Equal(t, got.gid, n, "%q", chown)
			}
		} else {
			assert.Assert(t, named(passwd, user), "%q: user resolved without a line of passwd", chown)
		}
		if hasGroup {
			if n, err := strconv.Atoi(grp); err == nil && n >= 0 {
				assert.Equal(t, got.gid, n, "%q", chown)
			} else {
				assert.Assert(t, named(group, grp), "%q: group resolved without a line of group", chown)
			}
		}
	})
}

// TestChownIDRange: ids from a hostile image's passwd or group that would
// wrap to root (2^32) or mean "leave as is" (-1) are refused.
func TestChownIDRange(t *testing.T) {
	for _, tc := range []struct{ chown, passwd, group, err string }{
		{chown: "u", passwd: "u:x:4294967296:4294967296::/:\n", err: "id 4294967296 out of range"},
		{chown: "u", passwd: "u:x:-1:-1::/:\n", err: "id -1 out of range"},
		{chown: "u:g", passwd: "u:x:5:5::/:\n", group: "g:x:-7:\n", err: "id -7 out of range"},
		{chown: "99999999999", err: "out of range"},
		{chown: "u", passwd: "u:x:4294967294:7::/:\n"},
	} {
		r := &build{b: &Builder{ctrs: fuzzFiles{files: map[string]string{"/etc/passwd": tc.passwd, "/etc/group": tc.group}}}}
		_, err := r.owner(context.Background(), "ctr", tc.chown)
		if tc.err == "" {
			assert.NilError(t, err, tc.chown)
			continue
		}
		assert.Check(t, errdefs.IsInvalidArgument(err), "%s: %v", tc.chown, err)
		assert.Check(t, err != nil && strings.Contains(err.Error(), tc.err), "%s: %v", tc.chown, err)
	}
}
