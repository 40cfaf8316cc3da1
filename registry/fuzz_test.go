package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	mregistry "github.com/moby/moby/api/types/registry"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// FuzzDecodeAuth: an X-Registry-Auth header decodes to credentials or is
// ErrInvalidArgument; what it decodes to, encoded as the docker CLI does
// (base64url JSON), decodes to the same; and the credentials it carries
// give a system context or ErrInvalidArgument (an "auth" that is not
// base64), never anything else.
func FuzzDecodeAuth(f *testing.F) {
	enc := func(a mregistry.AuthConfig) string {
		b, _ := json.Marshal(a)
		return base64.URLEncoding.EncodeToString(b)
	}
	f.Add("")
	f.Add(enc(mregistry.AuthConfig{Username: "u", Password: "p", ServerAddress: "127.0.0.1:5000"}))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"auth":"dTpw"}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"identitytoken":"t+/="}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"registrytoken":"r"}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"auth":"not base64!"}`)))
	f.Add("e30") // {}
	f.Add("not base64")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`[1]`)))
	f.Fuzz(func(t *testing.T, h string) {
		cfg, err := DecodeAuth(h)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", h, err)
			assert.Assert(t, cfg == nil)
			return
		}
		if h == "" {
			assert.Assert(t, cfg == nil)
			return
		}
		assert.Assert(t, cfg != nil, "%q decoded to nothing", h)
		again, err := DecodeAuth(enc(*cfg))
		assert.NilError(t, err)
		assert.DeepEqual(t, again, cfg)

		s := &Service{}
		reg, err := s.registryOpts("registry.example:5000", cfg)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%+v: %v", cfg, err)
			return
		}
		switch {
		case cfg.RegistryToken != "":
			assert.Equal(t, reg.RegistryToken, cfg.RegistryToken)
		case reg.Username != "" || reg.IdentityToken != "":
			if cfg.Username != "" {
				assert.Equal(t, reg.Username, cfg.Username)
				assert.Equal(t, reg.Password, cfg.Password)
			}
			assert.Equal(t, reg.IdentityToken, cfg.IdentityToken)
		}
	})
}

// fuzzTar is a tar of the entries named in names (one a line), each holding
// body; gzipped when asked. False when a name cannot be in a tar.
func fuzzTar(t *testing.T, names string, body []byte, gz bool) ([]byte, bool) {
	var buf bytes.Buffer
	var w = &buf
	var zw *gzip.Writer
	tw := tar.NewWriter(w)
	if gz {
		zw = gzip.NewWriter(w)
		tw = tar.NewWriter(zw)
	}
	for _, n := range strings.Split(names, "\n") {
		if n == "" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, false
		}
		_, _ = tw.Write(body)
	}
	assert.NilError(t, tw.Close())
	if zw != nil {
		assert.NilError(t, zw.Close())
	}
	return buf.Bytes(), true
}

// FuzzDetectArchive: docker load's sniffing. Any bytes give a format or
// ErrInvalidArgument, and index.json only with an OCI archive; a tar of
// the given names is a docker archive exactly when one is manifest.json,
// else OCI exactly when it has oci-layout and index.json (whose content
// comes back), else not an image.
func FuzzDetectArchive(f *testing.F) {
	f.Add([]byte("not a tar"), "manifest.json\nlayer.tar", []byte("[]"))
	f.Add([]byte{}, "oci-layout\n./index.json\nblobs/sha256/x", []byte(`{"manifests":[]}`))
	f.Add([]byte{}, "index.json", []byte("{}"))
	f.Add([]byte{}, "", []byte(""))
	f.Fuzz(func(t *testing.T, raw []byte, names string, body []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.tar")
		assert.NilError(t, os.WriteFile(p, raw, 0o600))
		format, index, err := detectArchive(p)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)
		} else if format != ociArchive {
			assert.Assert(t, index == nil)
		}

		data, ok := fuzzTar(t, names, body, false)
		if !ok {
			return
		}
		assert.NilError(t, os.WriteFile(p, data, 0o600))
		format, index, err = detectArchive(p)
		var manifest, layout, idx bool
		var n int
		for _, name := range strings.Split(names, "\n") {
			if name == "" {
				continue
			}
			n++
			switch strings.TrimPrefix(name, "./") {
			case "manifest.json":
				manifest = true
			case "oci-layout":
				layout = true
			case "index.json":
				idx = true
			}
		}
		switch {
		case n == 0:
			assert.Assert(t, errdefs.IsInvalidArgument(err), "an empty tar: %v", err)
		case manifest:
			assert.NilError(t, err)
			assert.Equal(t, format, dockerArchive)
		case layout && idx:
			assert.NilError(t, err)
			assert.Equal(t, format, ociArchive)
			assert.Assert(t, is.DeepEqual(index, body), "index.json") // the last one read
		default:
			assert.NilError(t, err)
			assert.Equal(t, format, notAnImage)
		}
	})
}

// FuzzCheckTarball: docker import's check. Bytes are a tarball (nil, f
// rewound) or ErrInvalidArgument; a tar, plain or gzipped, is always one.
func FuzzCheckTarball(f *testing.F) {
	f.Add([]byte("not a tar"), "bin/sh\netc/passwd", false)
	f.Add([]byte{0x1f, 0x8b, 8, 0}, "a", true)
	f.Add([]byte("BZh91AY&SY"), "", true)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, "x/y/z", false)
	f.Fuzz(func(t *testing.T, raw []byte, names string, gz bool) {
		check := func(data []byte) error {
			fp, err := os.Create(filepath.Join(t.TempDir(), "import.tar"))
			assert.NilError(t, err)
			defer fp.Close()
			_, err = fp.Write(data)
			assert.NilError(t, err)
			err = checkTarball(fp)
			if err == nil {
				off, serr := fp.Seek(0, 1)
				assert.NilError(t, serr)
				assert.Equal(t, off, int64(0), "not rewound")
			}
			return err
		}
		if err := check(raw); err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)
		}
		if data, ok := fuzzTar(t, names, []byte("data"), gz); ok {
			assert.NilError(t, check(data))
		}
	})
}
