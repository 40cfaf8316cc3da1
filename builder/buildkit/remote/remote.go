// Package remote is berthd's BuildKit when BuildKit runs in its own process,
// berth-buildkitd (cmd/berth-buildkitd; protocol: package
// builder/buildkit/wire). berthd links none of BuildKit: its idle memory
// does not hold BuildKit's code, and a panic in a build takes down the
// helper, not the daemon.
//
// The helper starts on the first request that needs it (a build session,
// the Control API, a df or prune of a cache that exists) and lives until
// berthd stops: it exits when its lifeline pipe from berthd closes, so a
// berthd that is killed takes it along. If it dies, its builds fail and the
// next request starts it again.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Config is what the service needs.
type Config struct {
	// Binary is berth-buildkitd's path.
	Binary string
	// RunDir holds the helper's socket (<exec-root>/buildkit).
	RunDir string
	// Helper is the helper's configuration; its Socket is set here.
	Helper wire.Config
	// Images is berth's image store; Network the default bridge's build
	// sandboxes (nil when Helper.Network is false).
	Images  wire.Images
	Network wire.Sandboxes
	// Log gets the helper's standard output and error.
	Log io.Writer
	// StartTimeout bounds the helper's start (0: a minute).
	StartTimeout time.Duration
	// IdleTimeout stops the helper once no request has been in flight for
	// that long (0: it runs until Close), giving its memory back; the next
	// request starts it again.
	IdleTimeout time.Duration
}

// Service is berthd's BuildKit in berth-buildkitd. Its methods are safe for
// concurrent use.
type Service struct {
	cfg Config

	mu       sync.Mutex
	proc     *helper
	stopping *helper // stopped for idleness; the next start waits for its exit
	active   int     // requests in flight
	idle     *time.Timer
	closed   bool
}

// helper is one run of berth-buildkitd.
type helper struct {
	pid      int
	socket   string
	lifeline *os.File // its write end; closing it asks the helper to stop
	done     chan struct{}
	grpc     *httputil.ReverseProxy
	http     *http.Client
	kill     func()
	expected atomic.Bool // berthd stops it: its exit is no news
}

// New checks cfg and returns the service; the helper starts on first use.
func New(cfg Config) (*Service, error) {
	if cfg.Binary == "" || cfg.RunDir == "" || cfg.Helper.Root == "" || cfg.Images == nil {
		return nil, errors.New("buildkit: Binary, RunDir, Helper.Root and Images are required")
	}
	if cfg.Helper.Network != (cfg.Network != nil) {
		return nil, errors.New("buildkit: Network is required exactly when Helper.Network is set")
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = time.Minute
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		logrus.WithError(err).Warn("buildkit: builds will fail until berth-buildkitd is installed next to berthd")
	}
	return &Service{cfg: cfg}, nil
}

// acquire returns the running helper, starting it when there is none (a
// concurrent caller waits for the same start), and counts a request in
// flight until release is called.
func (s *Service) acquire() (_ *helper, release func(), _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, errdefs.ErrUnavailable.WithMessage("buildkit: the daemon is shutting down")
	}
	if s.idle != nil {
		s.idle.Stop()
	}
	p := s.proc
	if !p.alive() {
		if sp := s.stopping; sp != nil {
			<-sp.done // its databases are locked until it exits
			s.stopping = nil
		}
		began := time.Now()
		var err error
		if p, err = s.start(); err != nil {
			return nil, nil, fmt.Errorf("start BuildKit: %w", err)
		}
		logrus.Debugf("berth-buildkitd %d serving in %s", p.pid, time.Since(began).Round(time.Millisecond))
		s.proc = p
	}
	s.active++
	var once sync.Once
	return p, func() { once.Do(s.release) }, nil
}

func (s *Service) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active > 0 || s.cfg.IdleTimeout <= 0 || s.closed || s.proc == nil {
		return
	}
	p := s.proc
	s.idle = time.AfterFunc(s.cfg.IdleTimeout, func() { s.stopIdle(p) })
}

// stopIdle stops p if it is still the helper and nothing is in flight.
func (s *Service) stopIdle(p *helper) {
	s.mu.Lock()
	if s.active > 0 || s.proc != p || s.closed {
		s.mu.Unlock()
		return
	}
	s.proc, s.stopping = nil, p
	s.mu.Unlock()
	if err := p.stop(); err != nil {
		logrus.WithError(err).Warn("buildkit")
	}
	logrus.Debugf("berth-buildkitd %d stopped after %s without a request", p.pid, s.cfg.IdleTimeout)
	s.mu.Lock()
	if s.stopping == p {
		s.stopping = nil
	}
	s.mu.Unlock()
}

// stop closes the helper's lifeline and waits for it to exit, killing it
// after 30 s.
func (p *helper) stop() error {
	p.expected.Store(true)
	p.lifeline.Close()
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		p.kill()
		<-p.done
		return fmt.Errorf("berth-buildkitd %d did not stop in 30s: killed", p.pid)
	}
}

// running is the helper when it runs, nil otherwise.
func (s *Service) running() *helper {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc.alive() {
		return s.proc
	}
	return nil
}

// alive reports whether p is a helper that has not exited (false for nil).
func (p *helper) alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (s *Service) start() (_ *helper, retErr error) {
	if err := os.MkdirAll(s.cfg.RunDir, 0o700); err != nil {
		return nil, err
	}
	socket := filepath.Join(s.cfg.RunDir, "buildkitd.sock")
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	hc := s.cfg.Helper
	hc.Socket = socket
	arg, err := json.Marshal(hc)
	if err != nil {
		return nil, err
	}

	var closeLater []io.Closer
	defer func() {
		for _, c := range closeLater {
			c.Close()
		}
	}()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	closeLater = append(closeLater, lifeR)
	defer func() {
		if retErr != nil {
			lifeW.Close()
		}
	}()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	closeLater = append(closeLater, readyR, readyW)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "callbacks"), os.NewFile(uintptr(fds[1]), "callbacks")
	closeLater = append(closeLater, ours, theirs)
	cb, err := net.FileConn(ours)
	if err != nil {
		return nil, err
	}

	cmd := exec.Command(s.cfg.Binary, string(arg))
	cmd.ExtraFiles = []*os.File{lifeR, theirs, readyW} // fds 3, 4, 5
	cmd.Stdout, cmd.Stderr = s.cfg.Log, s.cfg.Log
	// Its own process group: a ^C to berthd's terminal is berthd's to
	// handle; berthd stops the helper through the lifeline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		cb.Close()
		return nil, err
	}
	lifeR.Close()
	theirs.Close()
	readyW.Close()
	closeLater = []io.Closer{readyR, ours}
	var joined *sandboxes
	var network wire.Sandboxes // nil unless configured
	if s.cfg.Network != nil {
		joined = newSandboxes(s.cfg.Network)
		network = joined
	}
	go wire.ServeCallbacks(cb, wire.HostHandler(s.cfg.Images, network))

	p := &helper{pid: cmd.Process.Pid, socket: socket, lifeline: lifeW, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		cb.Close()
		lifeW.Close()
		if joined != nil {
			joined.leaveAll()
		}
		if !p.expected.Load() {
			logrus.WithError(err).Warnf("berth-buildkitd %d exited; the next build starts it again", p.pid)
		}
		close(p.done)
	}()
	p.kill = func() { _ = cmd.Process.Kill() }

	_ = readyR.SetReadDeadline(time.Now().Add(s.cfg.StartTimeout))
	msg, err := io.ReadAll(io.LimitReader(readyR, 4096))
	if err != nil || string(msg) != wire.Ready {
		p.expected.Store(true)
		p.kill()
		<-p.done
		if err == nil {
			err = errors.New(string(msg))
			if len(msg) == 0 {
				err = errors.New("berth-buildkitd exited before it served")
			}
		}
		return nil, err
	}

	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	h2 := &http.Transport{DialContext: dial, Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	p.http = &http.Client{Transport: &http.Transport{DialContext: dial}}
	p.grpc = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "buildkitd"
		},
		Transport:     h2,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			wire.WriteError(w, errdefs.ErrUnavailable.WithMessage("buildkit: "+err.Error()))
		},
	}
	return p, nil
}

// ServeSession serves POST /session: the client's build session, on the
// hijacked connection, until the client closes it.
func (s *Service) ServeSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return s.upgrade(ctx, w, r, "/session")
}

// ServeUpgrade serves POST /grpc: the Control API over h2c on the hijacked
// connection, until the client closes it.
func (s *Service) ServeUpgrade(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return s.upgrade(ctx, w, r, "/grpc")
}

// upgrade passes r to the helper as path; when the helper switches
// protocols, the client's connection is joined to the helper's until
// either end closes. Any other answer is returned as its error.
func (s *Service) upgrade(ctx context.Context, w http.ResponseWriter, r *http.Request, path string) error {
	p, release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	hc, err := (&net.Dialer{}).DialContext(ctx, "unix", p.socket)
	if err != nil {
		return errdefs.ErrUnavailable.WithMessage("buildkit: " + err.Error())
	}
	defer hc.Close()
	out := r.Clone(ctx)
	out.URL = &url.URL{Scheme: "http", Host: "buildkitd", Path: path, RawQuery: r.URL.RawQuery}
	out.Host, out.RequestURI, out.Body, out.ContentLength = "buildkitd", "", http.NoBody, 0
	if err := out.Write(hc); err != nil {
		return errdefs.ErrUnavailable.WithMessage("buildkit: " + err.Error())
	}
	hr := bufio.NewReader(hc)
	resp, err := http.ReadResponse(hr, out)
	if err != nil {
		return errdefs.ErrUnavailable.WithMessage("buildkit: " + err.Error())
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return wire.ReadError(resp)
	}
	cc, crw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer cc.Close()
	_ = cc.SetDeadline(time.Time{})
	fmt.Fprintf(crw.Writer, "HTTP/1.1 %s\r\n", resp.Status)
	_ = resp.Header.Write(crw.Writer)
	crw.Writer.WriteString("\r\n")
	if err := crw.Writer.Flush(); err != nil {
		return nil
	}
	join(cc, crw.Reader, hc, hr)
	return nil
}

// join copies a's reader to b and b's reader to a until one way ends, then
// closes both (an h2c peer that closed has nothing more to receive).
func join(a net.Conn, ar io.Reader, b net.Conn, br io.Reader) {
	ended := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, ar); ended <- struct{}{} }()
	go func() { _, _ = io.Copy(a, br); ended <- struct{}{} }()
	<-ended
	a.Close()
	b.Close()
	<-ended
}

// ServeHTTP serves gRPC sent as HTTP/2 straight on the socket.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, release, err := s.acquire()
	if err != nil {
		logrus.WithError(err).Error("buildkit")
		wire.WriteError(w, err)
		return
	}
	defer release()
	p.grpc.ServeHTTP(w, r)
}

// hasCache reports whether BuildKit has ever kept state (so a df of a
// daemon that never built starts nothing).
func (s *Service) hasCache() bool {
	if s.running() != nil {
		return true
	}
	_, err := os.Stat(filepath.Join(s.cfg.Helper.Root, "history.db"))
	return err == nil
}

// DiskUsage reports the build cache for GET /system/df (and docker
// builder du).
func (s *Service) DiskUsage(ctx context.Context) (*build.DiskUsage, error) {
	du := &build.DiskUsage{Items: []build.CacheRecord{}}
	if !s.hasCache() {
		return du, nil
	}
	return du, s.call(ctx, http.MethodGet, wire.PathDiskUsage, nil, du)
}

// Prune removes build cache records as POST /build/prune asks and reports
// what went.
func (s *Service) Prune(ctx context.Context, o wire.PruneOptions) (*build.CachePruneReport, error) {
	report := &build.CachePruneReport{CachesDeleted: []string{}}
	if !s.hasCache() {
		return report, nil
	}
	return report, s.call(ctx, http.MethodPost, wire.PathPrune, o, report)
}

func (s *Service) call(ctx context.Context, method, path string, in, out any) error {
	p, release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	var body io.Reader = http.NoBody
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://buildkitd"+path, body)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return errdefs.ErrUnavailable.WithMessage("buildkit: " + err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return wire.ReadError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Close stops the helper (running builds end) and waits for it.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.idle != nil {
		s.idle.Stop()
	}
	procs := []*helper{s.proc, s.stopping}
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	return errors.Join(errs...)
}
