package integration

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestImageLoadBrokenArchive: as dockerd, POST /images/load answers 200
// with the error in the stream, quiet or not, and docker load fails with it.
func TestImageLoadBrokenArchive(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	assert.NilError(t, os.WriteFile(bad, []byte(strings.Repeat("not a tar ", 200)), 0o644))
	for _, args := range [][]string{{"load", "-i", bad}, {"load", "-q", "-i", bad}} {
		r := d.Docker(args...)
		assert.Check(t, r.ExitCode != 0, args)
		assert.Check(t, is.Contains(r.Stderr(), "invalid image archive"), args)
	}
	out := d.DockerPy(t, `
import docker
api = docker.from_env().api
for quiet in ('1', '0'):
    res = api._post(api._url('/images/load'), data=b'not a tar ' * 200, params={'quiet': quiet})
    print(res.status_code, res.headers['Content-Type'], res.text.strip())
`)
	lines := strings.Split(out, "\n")
	assert.Assert(t, is.Len(lines, 2), out)
	for _, l := range lines {
		assert.Check(t, is.Regexp(`^200 application/json \{"errorDetail":\{"message":"invalid image archive: [^"]+"\},"error":"invalid image archive: [^"]+"\}$`, l))
	}
	assert.Equal(t, d.DockerOK(t, "images", "-qa"), "")
}

// TestImageTagAndImportBadInput: dockerd's errors for a tag named like a
// digest algorithm and for an import source that is no source.
func TestImageTagAndImportBadInput(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	for _, target := range []string{"sha256:abc", "sha256"} {
		r := d.Docker("tag", "busybox", target)
		assert.Check(t, r.ExitCode != 0)
		assert.Check(t, is.Contains(r.Stderr(), "refusing to create an ambiguous tag using digest algorithm as name"), target)
	}
	d.DockerOK(t, "tag", "busybox", "sha256x:abc") // only the algorithm's own name is refused

	out := d.DockerPy(t, `
import docker
api = docker.from_env().api
for src in ('ftp://example.com/x.tar', '/a/host/path', 'http://[::1', 'http://example.com/x.tar'):
    res = api._post(api._url('/images/create'), params={'fromSrc': src})
    print(res.status_code, res.json()['message'])
`)
	lines := strings.Split(out, "\n")
	assert.Assert(t, is.Len(lines, 4), out)
	assert.Check(t, is.Contains(lines[0], `400 invalid import source "ftp://example.com/x.tar"`))
	assert.Check(t, is.Contains(lines[1], `400 invalid import source "/a/host/path"`))
	assert.Check(t, is.Contains(lines[2], `400 parse "http://[::1"`))
	assert.Check(t, is.Contains(lines[3], "501 berth imports tarballs from the request body only"))
}

// TestImageListManifests: GET /images/json?manifests=1 (API 1.47+)
// describes each image's manifest, as dockerd with the containerd store.
func TestImageListManifests(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := d.LoadBusybox(t)
	d.DockerOK(t, "run", "--name", "user", "busybox", "true")
	ctr := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "user"))
	out := d.DockerPy(t, `
import docker, json
api = docker.from_env().api
for v in ('1.47', '1.46'):
    res = api._get('http://localhost/v%s/images/json' % v, params={'manifests': '1'})
    print(json.dumps(res.json()))
`)
	lines := strings.Split(out, "\n")
	assert.Assert(t, is.Len(lines, 2), out)
	var with, without []struct {
		ID        string `json:"Id"`
		Manifests []struct {
			ID         string
			Descriptor ocispec.Descriptor
			Available  bool
			Kind       string
			Size       struct{ Content, Total int64 }
			ImageData  struct {
				Platform   ocispec.Platform
				Containers []string
				Size       struct{ Unpacked int64 }
			}
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(lines[0]), &with))
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &without))
	assert.Assert(t, is.Len(with, 1))
	assert.Check(t, is.Equal(with[0].ID, id))
	assert.Assert(t, is.Len(with[0].Manifests, 1))
	m := with[0].Manifests[0]
	assert.Check(t, is.Equal(m.Kind, "image"))
	assert.Check(t, m.Available)
	assert.Check(t, is.Equal(m.ID, m.Descriptor.Digest.String()))
	assert.Check(t, is.Contains([]string{ocispec.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json"}, m.Descriptor.MediaType))
	assert.Check(t, is.Equal(m.ImageData.Platform.OS, "linux"))
	assert.Check(t, m.Size.Total > 0 && m.ImageData.Size.Unpacked > 0)
	assert.Check(t, is.DeepEqual(m.ImageData.Containers, []string{ctr}))
	assert.Assert(t, is.Len(without, 1))
	assert.Check(t, is.Len(without[0].Manifests, 0), "API 1.46 has no manifests")
}

// TestImageSaveOCILayout: docker save writes what dockerd 25+ writes, an
// archive that is also an OCI image layout (index.json, oci-layout,
// blobs/sha256), which loads back as the same image.
func TestImageSaveOCILayout(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	id := d.LoadBusybox(t)
	d.DockerOK(t, "tag", "busybox", "other/name:v2")
	archive := filepath.Join(t.TempDir(), "saved.tar")
	d.DockerOK(t, "save", "-o", archive, "busybox:latest", "other/name:v2")

	files := tarFiles(t, archive)
	assert.Check(t, is.Equal(string(files["oci-layout"]), `{"imageLayoutVersion":"1.0.0"}`))
	var index ocispec.Index
	assert.NilError(t, json.Unmarshal(files["index.json"], &index))
	assert.Assert(t, is.Len(index.Manifests, 2))
	names := map[string]string{}
	for _, m := range index.Manifests {
		names[m.Annotations["io.containerd.image.name"]] = m.Annotations[ocispec.AnnotationRefName]
		var man ocispec.Manifest
		blob, ok := files["blobs/sha256/"+m.Digest.Encoded()]
		assert.Assert(t, ok, "manifest blob %s", m.Digest)
		assert.NilError(t, json.Unmarshal(blob, &man))
		assert.Check(t, is.Equal(man.Config.Digest.String(), id))
		for _, l := range man.Layers {
			_, ok := files["blobs/sha256/"+l.Digest.Encoded()]
			assert.Check(t, ok, "layer blob %s", l.Digest)
		}
	}
	assert.Check(t, is.DeepEqual(names, map[string]string{"docker.io/library/busybox:latest": "latest", "docker.io/other/name:v2": "v2"}))
	var manifest []struct{ Config string }
	assert.NilError(t, json.Unmarshal(files["manifest.json"], &manifest))
	assert.Assert(t, is.Len(manifest, 1))
	assert.Check(t, is.Equal(manifest[0].Config, "blobs/sha256/"+strings.TrimPrefix(id, "sha256:")))

	// it loads back, the second and third time too
	d.DockerOK(t, "rmi", "busybox:latest", "other/name:v2")
	for i := 0; i < 2; i++ {
		out := d.DockerOK(t, "load", "-i", archive)
		assert.Check(t, is.Contains(out, "Loaded image: busybox:latest"))
		assert.Check(t, is.Contains(out, "Loaded image: other/name:v2"))
		assert.Equal(t, d.DockerOK(t, "inspect", "-f", "{{.Id}}", "other/name:v2"), id+"\n")
	}
}

func tarFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		assert.NilError(t, err)
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			assert.NilError(t, err)
			out[hdr.Name] = b
		}
	}
}
