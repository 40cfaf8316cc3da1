package images

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	mregistry "github.com/moby/moby/api/types/registry"
)

// streamed runs an operation whose answer is a JSON progress stream: an
// error before the stream started is returned (and gets its status code),
// an error after it is the stream's last message, as dockerd does.
func streamed(w http.ResponseWriter, op func(start registry.StartFunc) error) error {
	var stream *httputil.JSONStream
	err := op(func() registry.Output {
		if stream == nil {
			stream = httputil.NewJSONStream(w)
		}
		return stream
	})
	if err != nil {
		if stream == nil {
			return err
		}
		_ = stream.Send(registry.ErrorMessage(err))
	}
	return nil
}

// authHeader decodes X-Registry-Auth; like dockerd, an undecodable header
// counts as no credentials.
func authHeader(r *http.Request) *mregistry.AuthConfig {
	auth, err := registry.DecodeAuth(r.Header.Get(mregistry.AuthHeader))
	if err != nil {
		return nil
	}
	return auth
}

func (ir *Router) postImagesCreate(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	from := r.Form.Get("fromImage")
	if src := r.Form.Get("fromSrc"); src != "" && from == "" {
		if err := checkImportSource(src); err != nil {
			return err
		}
		opts := registry.ImportOptions{
			Repo: r.Form.Get("repo"), Tag: r.Form.Get("tag"),
			Message: r.Form.Get("message"), Changes: r.Form["changes"],
		}
		if opts.Message == "" {
			opts.Message = "Imported from " + src // dockerd's default comment
		}
		return streamed(w, func(start registry.StartFunc) error {
			return ir.backend.Import(ctx, r.Body, opts, start)
		})
	}
	if from == "" {
		return errdefs.ErrInvalidArgument.WithMessage("fromImage or fromSrc is required")
	}
	opts := registry.PullOptions{
		FromImage: from,
		Tag:       r.Form.Get("tag"),
		Platform:  r.Form.Get("platform"),
		Auth:      authHeader(r),
	}
	return streamed(w, func(start registry.StartFunc) error {
		return ir.backend.Pull(ctx, opts, start)
	})
}

// checkImportSource accepts "-" (the request body). Anything else is a URL
// to dockerd, which berth does not fetch: what is no http(s) URL is an
// invalid argument, in url's words as dockerd's; a URL is not implemented.
func checkImportSource(src string) error {
	if src == "-" {
		return nil
	}
	full := src
	if !strings.Contains(full, "://") {
		full = "http://" + full
	}
	u, err := url.Parse(full)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid import source %q: not - (the request body) nor an http(s) URL", src))
	}
	return errdefs.ErrNotImplemented.WithMessage("berth imports tarballs from the request body only (fromSrc=-), not from a URL")
}

func (ir *Router) postImagePush(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	opts := registry.PushOptions{Name: vars["name"], Tag: r.Form.Get("tag"), Auth: authHeader(r)}
	return streamed(w, func(start registry.StartFunc) error {
		return ir.backend.Push(ctx, opts, start)
	})
}

func (ir *Router) postImagesLoad(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	quiet := httputil.BoolValueOrDefault(r, "quiet", true)
	// as dockerd: the answer is always the stream, a bad archive's error
	// in it (docker load reads the error from there, quiet or not)
	var stream *httputil.JSONStream
	start := func() registry.Output {
		if stream == nil {
			stream = httputil.NewJSONStream(w)
		}
		return stream
	}
	if err := ir.backend.Load(ctx, r.Body, quiet, start); err != nil {
		_ = start().Send(registry.ErrorMessage(err))
	}
	return nil
}

func (ir *Router) getImagesGet(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	names := r.Form["names"]
	if n := vars["name"]; n != "" {
		names = []string{n}
	}
	return ir.backend.Save(ctx, names, func() io.Writer {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		return w
	})
}

func (ir *Router) postAuth(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var auth mregistry.AuthConfig
	if err := httputil.ReadJSON(r, &auth, false); err != nil {
		return err
	}
	resp, err := ir.backend.Login(ctx, auth)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}

func (ir *Router) getDistribution(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := ir.backend.DistributionInspect(ctx, vars["name"], authHeader(r))
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, resp)
}
