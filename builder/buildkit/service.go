// Package buildkit serves BuildKit from berthd, as dockerd embeds it: what
// `docker build` (through the buildx plugin), `docker buildx` and compose
// builds talk to. It owns the BuildKit controller (dockerfile and gateway
// frontends, bbolt cache store and build history) on an OCI worker that runs
// steps with runc on an overlayfs snapshotter under <data-root>/buildkit;
// the client's session (POST /session) and the Control API over gRPC (POST
// /grpc upgraded to h2c, or HTTP/2 straight on the socket); the "moby"
// exporter that lands a built image in berth's image store; base images
// resolved from berth's store first; and the build cache's accounting
// (df, prune).
//
// The controller starts on the first request that needs it, so a daemon
// that never builds pays nothing but the session manager.
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berthd/berth/builder/buildkit/steps"
	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// Images is berth's image store as the builder needs it (registry.Service,
// or berthd's over the callback connection in berth-buildkitd).
type Images = wire.Images

// Deps is what the BuildKit service needs.
type Deps struct {
	// Root holds BuildKit's state: snapshots, content, cache and history
	// databases (<data-root>/buildkit).
	Root   string
	Images Images
	// Network gives RUN steps their default network (berth's default
	// bridge); nil runs them in the host's network.
	Network Sandboxes
	// HostGateway is the address of host-gateway in --add-host (the
	// default bridge's gateway), told to buildx in a worker label.
	HostGateway string
	// DNS is the resolv.conf of RUN steps; empty copies the host's.
	DNS DNSConfig
	// CgroupParent is the cgroup under which steps run.
	CgroupParent string
}

// DNSConfig is what RUN steps' resolv.conf says.
type DNSConfig = wire.DNSConfig

// Service is berthd's BuildKit. Its methods are safe for concurrent use.
type Service struct {
	d        Deps
	sessions *session.Manager
	h2       *http2.Server

	mu      sync.Mutex
	ctl     *control.Controller
	grpc    *grpc.Server
	closers []func() error
	closed  bool
}

// New checks d and returns the service; BuildKit itself starts on first use.
func New(d Deps) (*Service, error) {
	if d.Root == "" || d.Images == nil {
		return nil, errors.New("buildkit: Root and Images are required")
	}
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	steps.Recover(context.Background(), d.Root, d.CgroupParent)
	return &Service{d: d, sessions: sm, h2: &http2.Server{}}, nil
}

// ServeSession serves POST /session: the client's end of a build session
// (its files, secrets, ssh agents and credentials), upgraded to h2c on the
// hijacked connection until the client closes it.
func (s *Service) ServeSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return s.sessions.HandleHTTPRequest(ctx, w, r)
}

// ServeUpgrade serves POST /grpc: the connection, upgraded to h2c, carries
// the Control API until the client closes it.
func (s *Service) ServeUpgrade(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if proto := r.Header.Get("Upgrade"); proto != "h2c" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("protocol %q not supported (want h2c)", proto))
	}
	gs, err := s.server()
	if err != nil {
		return err
	}
	h, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("connection cannot be hijacked")
	}
	conn, _, err := h.Hijack()
	if err != nil {
		return err
	}
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "h2c")
	if err := resp.Write(conn); err != nil {
		conn.Close()
		return nil
	}
	s.h2.ServeConn(conn, &http2.ServeConnOpts{Context: context.WithoutCancel(ctx), Handler: gs})
	return nil
}

// ServeHTTP serves gRPC sent as HTTP/2 straight on the socket (what
// current clients do instead of POST /grpc).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gs, err := s.server()
	if err != nil {
		logrus.WithError(err).Error("buildkit")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	gs.ServeHTTP(w, r)
}

// server returns the gRPC server of the Control API, starting BuildKit
// when this is its first use. A start that failed is tried again by the
// next request.
func (s *Service) server() (*grpc.Server, error) {
	if _, err := s.controller(); err != nil {
		return nil, err
	}
	return s.grpc, nil
}

func (s *Service) controller() (*control.Controller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("buildkit: the daemon is shutting down")
	}
	if s.ctl != nil {
		return s.ctl, nil
	}
	began := time.Now()
	ctl, closers, err := s.start(context.Background())
	if err != nil {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
		return nil, fmt.Errorf("start BuildKit: %w", err)
	}
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcerrors.UnaryServerInterceptor),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(16<<20),
		grpc.MaxSendMsgSize(16<<20),
	)
	ctl.Register(gs)
	s.ctl, s.grpc, s.closers = ctl, gs, closers
	logrus.Infof("BuildKit started in %s (%s)", time.Since(began).Round(time.Millisecond), s.d.Root)
	return ctl, nil
}

// started reports whether BuildKit has ever kept state under Root (so a
// df of a daemon that never built starts nothing).
func (s *Service) started() bool {
	s.mu.Lock()
	running := s.ctl != nil
	s.mu.Unlock()
	if running {
		return true
	}
	_, err := os.Stat(s.historyPath())
	return err == nil
}

// Close stops BuildKit (running builds end) and releases its databases.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ctl == nil {
		return nil
	}
	s.grpc.Stop()
	errs := []error{s.ctl.Close()}
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
