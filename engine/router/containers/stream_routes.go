package containers

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httpstatus"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/engine/router/system"
	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

func (r *Router) logs(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	opts := runtime.LogsOptions{
		Stdout:     httputil.BoolValue(req, "stdout"),
		Stderr:     httputil.BoolValue(req, "stderr"),
		Follow:     httputil.BoolValue(req, "follow"),
		Timestamps: httputil.BoolValue(req, "timestamps"),
		Tail:       -1,
	}
	details := httputil.BoolValue(req, "details")
	if !opts.Stdout && !opts.Stderr {
		return errdefs.ErrInvalidArgument.WithMessage("Bad parameters: you must choose at least one stream")
	}
	if t := req.Form.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			n = -1 // dockerd treats a bad tail as "all"
		}
		opts.Tail = n
	}
	var err error
	if opts.Since, err = system.ParseTimestamp(req.Form.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = system.ParseTimestamp(req.Form.Get("until")); err != nil {
		return err
	}
	stream, err := r.b.Logs(ctx, vars["name"], opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", compat.StreamContentType(httputil.VersionFromContext(ctx), stream.Tty))
	w.WriteHeader(http.StatusOK)
	httputil.Flush(w)
	var stdout, stderr io.Writer = w, w
	if !stream.Tty {
		stdout, stderr = httputil.NewMuxWriters(w)
	}
	for line := range stream.Lines {
		out := stdout
		if line.Stream == "stderr" {
			out = stderr
		}
		b := line.Line
		if details {
			b = append(append(detailsPrefix(line.Attrs), ' '), b...)
		}
		if opts.Timestamps {
			b = append([]byte(line.Time.UTC().Format(rfc3339NanoFixed)+" "), b...)
		}
		if _, err := out.Write(b); err != nil {
			stream.Cancel()
			for range stream.Lines {
			}
			return nil
		}
		if opts.Follow {
			httputil.Flush(w)
		}
	}
	return nil
}

func (r *Router) attach(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	a, err := r.attachTo(ctx, vars["name"], runtime.AttachOptions{
		Stdin:      httputil.BoolValue(req, "stdin"),
		Stdout:     httputil.BoolValue(req, "stdout"),
		Stderr:     httputil.BoolValue(req, "stderr"),
		Stream:     httputil.BoolValue(req, "stream"),
		Logs:       httputil.BoolValue(req, "logs"),
		DetachKeys: req.Form.Get("detachKeys"),
	})
	if err != nil {
		return err
	}
	conn, err := httputil.Hijack(w, req)
	if err != nil {
		a.Cancel()
		return err
	}
	defer conn.Close()
	tty := attachTTY(a)
	var stdout, stderr io.Writer = conn, conn
	if !tty {
		stdout, stderr = httputil.NewMuxWriters(conn)
	}
	contentType := compat.StreamContentType(httputil.VersionFromContext(ctx), tty)
	// the request context does not see a hijacked client hang up
	in, hctx, cancel := watchHangup(context.WithoutCancel(ctx), conn, conn.Conn)
	defer cancel()
	// the answer goes out only once the attachment is registered, so a
	// client that starts the container after it misses no output
	err = a.Run(hctx, in, stdout, stderr, func() { _ = conn.Upgrade(contentType) })
	if err != nil && !conn.Answered() {
		conn.Fail(httpstatus.FromError(err), err.Error())
		return nil
	}
	_ = conn.CloseWrite()
	return nil
}

func (r *Router) resize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(req)
	if err != nil {
		return err
	}
	if err := r.b.Resize(ctx, vars["name"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func sizeParams(req *http.Request) (uint, uint, error) {
	if err := httputil.ParseForm(req); err != nil {
		return 0, 0, err
	}
	h, err1 := strconv.ParseUint(req.Form.Get("h"), 10, 32)
	wd, err2 := strconv.ParseUint(req.Form.Get("w"), 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage("invalid resize parameters: h and w must be numbers")
	}
	return uint(h), uint(wd), nil
}

func (r *Router) execCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body container.ExecCreateRequest
	if err := httputil.ReadJSON(req, &body, false); err != nil {
		return err
	}
	id, err := r.b.ExecCreate(ctx, vars["name"], body)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

func (r *Router) execStart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body container.ExecStartRequest
	if err := httputil.ReadJSON(req, &body, true); err != nil {
		return err
	}
	if !body.Tty {
		body.ConsoleSize = nil // no console without a TTY (dockerd's rule); the create's applies
	}
	run, err := r.startExec(ctx, vars["id"], body)
	if err != nil {
		return err
	}
	if body.Detach {
		if err := run.Run(context.WithoutCancel(ctx), nil, nil, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, err := httputil.Hijack(w, req)
	if err != nil {
		run.Cancel()
		return err
	}
	if err := conn.Upgrade(compat.StreamContentType(httputil.VersionFromContext(ctx), run.TTY())); err != nil {
		run.Cancel()
		conn.Close()
		return nil
	}
	defer conn.Close()
	// framed as the start request says (whatever the exec was created
	// with); with a TTY only stdout is streamed, as dockerd does
	var stdout, stderr io.Writer = conn, nil
	if !run.TTY() {
		stdout, stderr = httputil.NewMuxWriters(conn)
	}
	in, hctx, cancel := watchHangup(context.WithoutCancel(ctx), conn, conn.Conn)
	defer cancel()
	_ = run.Run(hctx, in, stdout, stderr)
	_ = conn.CloseWrite()
	return nil
}

func (r *Router) execResize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(req)
	if err != nil {
		return err
	}
	if err := r.b.ExecResize(ctx, vars["id"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) execInspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	resp, err := r.b.ExecInspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}

// rfc3339NanoFixed is the time format of `docker logs -t`: always nine
// digits of fraction, so the lines align.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// detailsPrefix is how `docker logs --details` shows an entry's attributes:
// key=value pairs sorted by key, query-escaped, comma-separated.
func detailsPrefix(attrs map[string]string) []byte {
	var b []byte
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, url.QueryEscape(k)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(attrs[k])...)
	}
	return b
}
