// Package testimage builds small, reproducible test images from the host's
// static busybox (Debian busybox-static), with no network: a single-layer
// rootfs with applet links, /etc/passwd and /etc/group, written as a
// docker-archive (what `docker save` writes) and optionally an OCI archive.
// The same options always give the same digests.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Options describe one image.
type Options struct {
	// Tag is the repo:tag recorded in the archive, e.g. "busybox:latest".
	Tag string
	// Busybox is the static busybox binary (default /usr/bin/busybox).
	Busybox string
	// Cmd, Entrypoint, Env, WorkingDir, User, Labels, Volumes, ExposedPorts,
	// StopSignal and Healthcheck go into the image config as Docker writes them.
	Cmd          []string
	Entrypoint   []string
	Env          []string
	WorkingDir   string
	User         string
	Labels       map[string]string
	Volumes      []string
	ExposedPorts []string
	StopSignal   string
	Healthcheck  []string
	// Files are extra regular files (path -> content) added to the rootfs.
	Files map[string]string
	// Comment goes into the history, so images differ when wanted.
	Comment string
}

var epoch = time.Unix(0, 0).UTC()

// Result names the digests of what was built.
type Result struct {
	ImageID  string // sha256:<config digest>
	DiffID   string // sha256:<uncompressed layer digest>
	Manifest []byte // OCI manifest JSON (for OCI archives)
}

// WriteDockerArchive writes the image as a docker-archive tarball to path.
func WriteDockerArchive(path string, o Options) (*Result, error) {
	layer, err := buildLayer(o)
	if err != nil {
		return nil, err
	}
	diffID := sha(layer)
	cfg, err := configJSON(o, diffID)
	if err != nil {
		return nil, err
	}
	cfgID := sha(cfg)
	manifest, _ := json.Marshal([]map[string]any{{
		"Config":   cfgID + ".json",
		"RepoTags": []string{o.Tag},
		"Layers":   []string{diffID + "/layer.tar"},
	}})
	repo, tag, _ := strings.Cut(o.Tag, ":")
	repos, _ := json.Marshal(map[string]map[string]string{repo: {tag: diffID}})
	legacy := fmt.Sprintf(`{"id":"%s","created":"1970-01-01T00:00:00Z","os":"linux"}`, diffID)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string) {
		writeEntry(tw, &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}, nil)
	}
	file := func(name string, b []byte) {
		writeEntry(tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}, b)
	}
	file(cfgID+".json", cfg)
	dir(diffID + "/")
	file(diffID+"/VERSION", []byte("1.0"))
	file(diffID+"/json", []byte(legacy))
	file(diffID+"/layer.tar", layer)
	file("manifest.json", manifest)
	file("repositories", repos)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return &Result{ImageID: "sha256:" + cfgID, DiffID: "sha256:" + diffID}, nil
}

// WriteOCIArchive writes the image as an OCI layout tarball (oci-archive:)
// with the reference name ref.
func WriteOCIArchive(path, ref string, o Options) (*Result, error) {
	layer, err := buildLayer(o)
	if err != nil {
		return nil, err
	}
	diffID := sha(layer)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.ModTime = epoch
	_, _ = zw.Write(layer)
	_ = zw.Close()
	cfg, err := configJSON(o, diffID)
	if err != nil {
		return nil, err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(cfg), "size": len(cfg)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + sha(gz.Bytes()), "size": gz.Len()}},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest), "size": len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": ref},
		}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, b []byte) {
		writeEntry(tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}, b)
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		writeEntry(tw, &tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}, nil)
	}
	file("blobs/sha256/"+sha(cfg), cfg)
	file("blobs/sha256/"+sha(gz.Bytes()), gz.Bytes())
	file("blobs/sha256/"+sha(manifest), manifest)
	file("index.json", index)
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return &Result{ImageID: "sha256:" + sha(cfg), DiffID: "sha256:" + diffID, Manifest: manifest}, nil
}

func configJSON(o Options, diffID string) ([]byte, error) {
	env := o.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cmd := o.Cmd
	if cmd == nil && o.Entrypoint == nil {
		cmd = []string{"sh"}
	}
	c := map[string]any{"Env": env}
	if cmd != nil {
		c["Cmd"] = cmd
	}
	set := func(k string, v any, ok bool) {
		if ok {
			c[k] = v
		}
	}
	set("Entrypoint", o.Entrypoint, o.Entrypoint != nil)
	set("WorkingDir", o.WorkingDir, o.WorkingDir != "")
	set("User", o.User, o.User != "")
	set("Labels", o.Labels, len(o.Labels) > 0)
	set("StopSignal", o.StopSignal, o.StopSignal != "")
	if len(o.Volumes) > 0 {
		v := map[string]struct{}{}
		for _, p := range o.Volumes {
			v[p] = struct{}{}
		}
		c["Volumes"] = v
	}
	if len(o.ExposedPorts) > 0 {
		v := map[string]struct{}{}
		for _, p := range o.ExposedPorts {
			v[p] = struct{}{}
		}
		c["ExposedPorts"] = v
	}
	if len(o.Healthcheck) > 0 {
		c["Healthcheck"] = map[string]any{"Test": o.Healthcheck, "Interval": int64(time.Second), "Retries": 3}
	}
	createdBy := "testimage: host busybox + applet links"
	if o.Comment != "" {
		createdBy += " (" + o.Comment + ")"
	}
	return json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config":       c,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffID}},
		"history":      []map[string]any{{"created": "1970-01-01T00:00:00Z", "created_by": createdBy}},
	})
}

const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
`

func buildLayer(o Options) ([]byte, error) {
	bb := o.Busybox
	if bb == "" {
		bb = "/usr/bin/busybox"
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return nil, fmt.Errorf("read busybox (apt-get install busybox-static): %w", err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	type entry struct {
		hdr  tar.Header
		body []byte
	}
	entries := map[string]entry{}
	dir := func(name string, mode int64) {
		entries[name+"/"] = entry{hdr: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode}}
	}
	file := func(name string, mode int64, body []byte) {
		entries[name] = entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))}, body: body}
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "home", "usr", "usr/bin", "usr/sbin", "var", "var/www", "var/spool", "var/spool/mail"} {
		dir(d, 0o755)
	}
	dir("root", 0o700)
	dir("tmp", 0o1777)
	file("bin/busybox", 0o755, bin)
	for _, a := range applets {
		if a == "busybox" || strings.ContainsAny(a, "[/") {
			if a != "[" && a != "[[" {
				continue
			}
		}
		entries["bin/"+a] = entry{hdr: tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777}}
	}
	file("etc/passwd", 0o644, []byte(passwd))
	file("etc/group", 0o644, []byte(group))
	file("var/www/index.html", 0o644, []byte("hello from berth busybox\n"))
	for p, content := range o.Files {
		p = strings.TrimPrefix(p, "/")
		for d := p; ; {
			i := strings.LastIndex(d, "/")
			if i < 0 {
				break
			}
			d = d[:i]
			if _, ok := entries[d+"/"]; !ok {
				dir(d, 0o755)
			}
		}
		file(p, 0o644, []byte(content))
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = epoch
		e.hdr.Format = tar.FormatGNU
		writeEntry(tw, &e.hdr, e.body)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, h *tar.Header, body []byte) {
	if h.Format == tar.FormatUnknown {
		h.Format = tar.FormatPAX
	}
	if err := tw.WriteHeader(h); err != nil {
		panic(err) // only bad headers of our own making get here
	}
	if body != nil {
		_, _ = io.Copy(tw, bytes.NewReader(body))
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
