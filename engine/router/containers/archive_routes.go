package containers

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// pathStatHeader carries the stat of an archive path (base64 of its JSON).
const pathStatHeader = "X-Docker-Container-Path-Stat"

func archivePath(req *http.Request) (string, error) {
	if err := httputil.ParseForm(req); err != nil {
		return "", err
	}
	p := req.Form.Get("path")
	if p == "" {
		// dockerd's words, missing space included
		return "", errdefs.ErrInvalidArgument.WithMessage("bad parameter: pathcannot be empty")
	}
	return p, nil
}

func setPathStat(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func (r *Router) headArchive(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	st, err := r.b.StatPath(ctx, vars["name"], p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) getArchive(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	tr, st, err := r.b.ArchivePath(ctx, vars["name"], p)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	writeCompressed(w, req, tr)
	return nil
}

// writeCompressed sends body gzip- or deflate-encoded when the client
// accepts it, as dockerd does for archives.
func writeCompressed(w http.ResponseWriter, req *http.Request, body io.Reader) {
	var out io.Writer = w
	switch acceptedEncoding(req.Header.Get("Accept-Encoding")) {
	case "gzip":
		w.Header().Set("Content-Encoding", "gzip")
		gw := gzip.NewWriter(w)
		defer gw.Close()
		out = gw
	case "deflate":
		w.Header().Set("Content-Encoding", "deflate")
		fw, _ := flate.NewWriter(w, flate.DefaultCompression)
		defer fw.Close()
		out = fw
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(out, body)
}

// acceptedEncoding picks gzip or deflate from Accept-Encoding (q=0 refuses).
func acceptedEncoding(h string) string {
	accepted := map[string]bool{}
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.ReplaceAll(strings.TrimSpace(params), " ", "") == "q=0" {
			continue
		}
		accepted[strings.ToLower(strings.TrimSpace(name))] = true
	}
	for _, enc := range []string{"gzip", "deflate"} {
		if accepted[enc] {
			return enc
		}
	}
	return ""
}

func (r *Router) putArchive(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	opts := runtime.ExtractOptions{
		NoOverwriteDirNonDir: httputil.BoolValue(req, "noOverwriteDirNonDir"),
		CopyUIDGID:           httputil.BoolValue(req, "copyUIDGID"),
	}
	if err := r.b.ExtractToDir(ctx, vars["name"], p, opts, req.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
