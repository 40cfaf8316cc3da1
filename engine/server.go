// Package engine serves the Docker Engine API over HTTP. It is transport only:
// routers parse requests and call backends; this file mounts their routes
// bare and under /v{version}, negotiates the version, and writes errors.
package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httpstatus"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/safe"
	"github.com/gorilla/mux"
	"github.com/moby/moby/api/types/common"
	"github.com/sirupsen/logrus"
)

// Config says which API versions the server speaks.
type Config struct {
	// APIVersion is the newest version served (and advertised).
	APIVersion string
	// MinAPIVersion is the oldest version served.
	MinAPIVersion string
	// GRPC serves gRPC sent as HTTP/2 straight on the socket (BuildKit's
	// Control API, as dockerd serves it); nil answers such requests 404.
	GRPC http.Handler
}

// Server is the Engine API HTTP server.
type Server struct {
	cfg     Config
	handler http.Handler

	mu     sync.Mutex // srv and closed: Shutdown may come from another goroutine at any time
	srv    *http.Server
	closed bool
}

// New builds the server from its routers.
func New(cfg Config, routers ...httputil.Router) *Server {
	s := &Server{cfg: cfg}
	m := mux.NewRouter()
	for _, rt := range routers {
		for _, r := range rt.Routes() {
			h := s.makeHandler(r)
			m.Path("/v{version:[0-9.]+}" + r.Path).Methods(r.Method).Handler(h)
			m.Path(r.Path).Methods(r.Method).Handler(h)
		}
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "page not found")
	})
	m.NotFoundHandler = notFound
	m.MethodNotAllowedHandler = notFound
	s.handler = m
	if cfg.GRPC != nil {
		s.handler = grpcSplit{grpc: cfg.GRPC, api: m}
	}
	return s
}

// grpcSplit sends gRPC (HTTP/2 with a gRPC content type) to its own
// server and everything else to the API.
type grpcSplit struct {
	grpc, api http.Handler
}

func (g grpcSplit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		g.grpc.ServeHTTP(w, r)
		return
	}
	g.api.ServeHTTP(w, r)
}

// Handler is the http.Handler serving every route (for tests).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	if s.cfg.GRPC != nil {
		// HTTP/2 without TLS (prior knowledge) next to HTTP/1, for gRPC
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.srv = srv
	s.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits for running ones until ctx ends.
// Hijacked streams (attach, exec) are owned by their handlers and end with
// the daemon. A Serve that has not begun yet will not.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (s *Server) makeHandler(route httputil.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vars := mux.Vars(r)
		version := vars["version"]
		if version == "" {
			version = s.cfg.APIVersion
		} else if httputil.VersionLessThan(s.cfg.APIVersion, version) {
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, s.cfg.APIVersion))
			return
		} else if httputil.VersionLessThan(version, s.cfg.MinAPIVersion) {
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, s.cfg.MinAPIVersion))
			return
		}
		w.Header().Set("Server", "berth/"+s.cfg.APIVersion+" ("+runtime.GOOS+")")
		w.Header().Set("Api-Version", s.cfg.APIVersion)
		w.Header().Set("Ostype", runtime.GOOS)
		ctx := httputil.WithVersion(r.Context(), version)
		rec := &recorder{ResponseWriter: w}
		out, finish := compat.Answer(route, version, rec)
		start := time.Now()
		err := callHandler(route, ctx, out, r.WithContext(ctx), vars)
		if err == nil {
			finish()
		}
		if err != nil {
			status := httpstatus.FromError(err)
			if status >= 500 {
				logrus.WithError(err).Errorf("%s %s", r.Method, r.URL.Path)
			} else {
				logrus.WithError(err).Debugf("%s %s -> %d", r.Method, loggedURI(r.URL), status)
			}
			if !rec.wrote {
				writeError(rec, r, status, err.Error())
			}
		}
		logrus.Debugf("%s %s -> %d (%s)", r.Method, loggedURI(r.URL), rec.statusOr200(), time.Since(start).Round(time.Microsecond))
	})
}

// loggedURI is the request's URI for the log, without the values of
// parameters that may carry secrets (a build's args).
func loggedURI(u *url.URL) string {
	q := u.Query()
	if _, ok := q["buildargs"]; !ok {
		return u.RequestURI()
	}
	q.Set("buildargs", "redacted")
	c := *u
	c.RawQuery = q.Encode()
	return c.RequestURI()
}

// callHandler runs a route's handler and turns a panic into an error: the
// client gets a 500 rather than a cut connection, the panic and its stack
// go to the log, and the daemon serves on. (net/http would recover too,
// but silently for the client.) http.ErrAbortHandler is passed on: it is
// how a handler asks net/http to abort the answer.
func callHandler(route httputil.Route, ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			safe.Log(r.Method+" "+r.URL.Path, v)
			err = fmt.Errorf("internal error handling %s %s: %v", r.Method, r.URL.Path, v)
		}
	}()
	return route.Handler(ctx, w, r, vars)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status == http.StatusNotModified || r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	_ = httputil.WriteJSON(w, status, common.ErrorResponse{Message: msg})
}

// recorder remembers whether a handler has started its answer, so an error
// returned after that is not written into the middle of a stream. It passes
// Flush and Hijack through for streaming and attach.
type recorder struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.wrote, r.status = true, code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.wrote, r.status = true, http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	r.wrote = true
	return h.Hijack()
}

func (r *recorder) statusOr200() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
