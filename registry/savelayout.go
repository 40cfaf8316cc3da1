package registry

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archiveEntry is one image of a docker-archive's manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeLayout copies the docker-archive at path to w as dockerd (25 and
// later) writes docker save: an archive that is both a docker-archive
// (manifest.json, repositories) and an OCI image layout (oci-layout,
// index.json, blobs/sha256/), the config and layers stored once, as blobs.
// The legacy per-layer directories are left out, as dockerd does.
func writeLayout(w io.Writer, path string) error {
	entries, err := readArchiveManifest(path)
	if err != nil {
		return err
	}
	blobOf := map[string]string{} // archive path -> blob path
	for _, e := range entries {
		for _, p := range append([]string{e.Config}, e.Layers...) {
			hex := strings.TrimSuffix(strings.TrimSuffix(p, ".json"), ".tar")
			if digest.NewDigestFromEncoded(digest.SHA256, hex).Validate() != nil {
				return fmt.Errorf("save: unexpected archive member %q", p)
			}
			blobOf[p] = "blobs/sha256/" + hex
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	sizes := map[string]int64{}
	if err := writeDir(tw, "blobs/", now); err != nil {
		return err
	}
	if err := writeDir(tw, "blobs/sha256/", now); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		blob, isBlob := blobOf[name]
		switch {
		case isBlob:
			if _, done := sizes[blob]; done {
				continue
			}
			hdr.Name = blob
			sizes[blob] = hdr.Size
		case name == "repositories":
		default:
			continue // manifest.json is written below; legacy layer directories go
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	var index ocispec.Index
	index.SchemaVersion, index.MediaType = 2, ocispec.MediaTypeImageIndex
	out := make([]archiveEntry, 0, len(entries))
	for _, e := range entries {
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: blobDigest(blobOf[e.Config]), Size: sizes[blobOf[e.Config]]},
			Layers: []ocispec.Descriptor{},
		}
		oe := archiveEntry{Config: blobOf[e.Config], RepoTags: e.RepoTags, Layers: []string{}}
		for _, l := range e.Layers {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: blobDigest(blobOf[l]), Size: sizes[blobOf[l]]})
			oe.Layers = append(oe.Layers, blobOf[l])
		}
		out = append(out, oe)
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		d := digest.FromBytes(raw)
		if _, done := sizes["blobs/sha256/"+d.Encoded()]; !done {
			sizes["blobs/sha256/"+d.Encoded()] = int64(len(raw))
			if err := writeFile(tw, "blobs/sha256/"+d.Encoded(), raw, now); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(raw))}
		if len(e.RepoTags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range e.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			tagged := desc
			tagged.Annotations = map[string]string{"io.containerd.image.name": reference.TagNameOnly(named).String()}
			if nt, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
				tagged.Annotations[ocispec.AnnotationRefName] = nt.Tag()
			}
			index.Manifests = append(index.Manifests, tagged)
		}
	}
	files := []struct {
		name string
		v    any
	}{{"index.json", index}, {"manifest.json", out}, {"oci-layout", ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}}}
	for _, file := range files {
		raw, err := json.Marshal(file.v)
		if err != nil {
			return err
		}
		if err := writeFile(tw, file.name, raw, now); err != nil {
			return err
		}
	}
	return tw.Close()
}

func blobDigest(blob string) digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(blob, "blobs/sha256/"))
}

func readArchiveManifest(path string) ([]archiveEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("save: no manifest.json in the archive: %w", err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == "manifest.json" {
			var entries []archiveEntry
			if err := json.NewDecoder(tr).Decode(&entries); err != nil {
				return nil, fmt.Errorf("save: manifest.json: %w", err)
			}
			return entries, nil
		}
	}
}

func writeDir(tw *tar.Writer, name string, mtime time.Time) error {
	return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
}

func writeFile(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
