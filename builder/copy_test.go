package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type entry struct {
	name     string
	uid, gid int
	mode     int64
	body     string
}

func entries(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body, _ := io.ReadAll(tr)
		out = append(out, entry{hdr.Name, hdr.Uid, hdr.Gid, hdr.Mode & 0o7777, string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func sources(t *testing.T, srcs []string, dest string, destIsDir, unpack bool, owner ids, mode *os.FileMode) []entry {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var ss []source
	for _, p := range srcs {
		ss = append(ss, source{path: p, name: filepath.Base(p)})
	}
	w := sourceWriter{dest: dest, destIsDir: destIsDir, makeDest: true, unpack: unpack, owner: owner, mode: mode}
	assert.NilError(t, w.write(tw, ss))
	assert.NilError(t, tw.Close())
	return entries(t, buf.Bytes())
}

func TestWriteSources(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("file"), 0o640))
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755))
	assert.NilError(t, os.Chmod(filepath.Join(dir, "d"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "d", "sub", "x"), []byte("x"), 0o755))

	// a file to a file path, then into a directory
	assert.DeepEqual(t, sources(t, []string{filepath.Join(dir, "f")}, "/etc/conf", false, false, ids{}, nil),
		[]entry{{"etc/conf", 0, 0, 0o640, "file"}}, cmpEntry)
	assert.DeepEqual(t, sources(t, []string{filepath.Join(dir, "f")}, "/app", true, false, ids{1000, 1001}, nil),
		[]entry{{"app/f", 1000, 1001, 0o640, "file"}}, cmpEntry)
	// a directory's contents go into dest, which is made 0755 (not the
	// mode of the source directory, say a 0700 context root)
	mode := os.FileMode(0o600)
	assert.DeepEqual(t, sources(t, []string{filepath.Join(dir, "d")}, "/opt/d2", false, false, ids{}, &mode), []entry{
		{"opt/d2/", 0, 0, 0o755, ""}, {"opt/d2/sub/", 0, 0, 0o600, ""}, {"opt/d2/sub/x", 0, 0, 0o600, "x"},
	}, cmpEntry)
}

func TestFindSources(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "real.txt"), []byte("real"), 0o644))
	assert.NilError(t, os.Symlink("real.txt", filepath.Join(dir, "link.txt")))
	assert.NilError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "host")))

	// a symlink is followed inside the context, and named as itself
	got, err := findSources(dir, []string{"link.txt"}, "COPY")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []source{{path: filepath.Join(dir, "real.txt"), name: "link.txt"}}, cmp.AllowUnexported(source{})))
	// never to the host's files
	_, err = findSources(dir, []string{"host"}, "COPY")
	assert.Check(t, is.ErrorContains(err, "COPY failed: file not found in build context"))

	// the hash names content: the same content the same hash, a change another
	h1, err := sourcesHash(got)
	assert.NilError(t, err)
	assert.Check(t, strings.HasPrefix(h1, "file:"))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "real.txt"), []byte("changed"), 0o644))
	h2, _ := sourcesHash(got)
	assert.Check(t, h1 != h2)
	all, err := findSources(dir, []string{"*.txt"}, "COPY")
	assert.NilError(t, err)
	hm, _ := sourcesHash(all)
	assert.Check(t, strings.HasPrefix(hm, "multi:"))
}

func TestWriteSourcesUnpacksArchives(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range []entry{{"a/", 5, 6, 0o755, ""}, {"a/b", 5, 6, 0o644, "bee"}, {"../../escape", 0, 0, 0o644, "no"}} {
		typ := byte(tar.TypeReg)
		if e.body == "" {
			typ = tar.TypeDir
		}
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: e.name, Uid: e.uid, Gid: e.gid, Mode: e.mode, Size: int64(len(e.body)), Typeflag: typ}))
		_, _ = tw.Write([]byte(e.body))
	}
	assert.NilError(t, tw.Close())
	assert.NilError(t, zw.Close())
	tgz := filepath.Join(dir, "x.tar.gz")
	assert.NilError(t, os.WriteFile(tgz, buf.Bytes(), 0o644))

	// ADD unpacks (keeping owners), entries cannot leave dest; COPY copies the file
	assert.DeepEqual(t, sources(t, []string{tgz}, "/dst", true, true, ids{}, nil), []entry{
		{"dst/a/", 5, 6, 0o755, ""}, {"dst/a/b", 5, 6, 0o644, "bee"}, {"dst/escape", 0, 0, 0o644, "no"},
	}, cmpEntry)
	got := sources(t, []string{tgz}, "/dst", true, false, ids{}, nil)
	assert.Check(t, is.Len(got, 1))
	assert.Check(t, is.Equal(got[0].name, "dst/x.tar.gz"))
}

var cmpEntry = cmpAllowUnexported()

func cmpAllowUnexported() cmp.Option { return cmp.AllowUnexported(entry{}) }
