package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeHelperEnv) != "" {
		os.Exit(fakeHelper())
	}
	os.Exit(m.Run())
}

// images is a store with one image, busybox, of three layers.
type images struct{}

func (images) ImageContent(_ context.Context, ref string) (*registry.ImageContent, error) {
	if ref != "busybox" {
		return nil, errdefs.ErrNotFound.WithMessage("no such image: " + ref)
	}
	return &registry.ImageContent{ID: digest.FromString("c"), Layers: make([]ocispec.Descriptor, 3)}, nil
}
func (images) OpenLayer(context.Context, *registry.ImageContent, int) (io.ReadCloser, error) {
	return nil, errors.New("not in this test")
}
func (images) ImportOCILayout(context.Context, string) (string, error) { return "", nil }
func (images) Tag(context.Context, string, string, string) error       { return nil }
func (images) IsInsecure(string) bool                                  { return false }

type fixture struct {
	svc  *Service
	dir  string // the fake's records
	root string // BuildKit's root
}

// newService runs the test binary as the fake helper. With cache, the
// root looks like one BuildKit has used.
func newService(t *testing.T, cache bool, env ...string) *fixture {
	t.Helper()
	return newServiceWith(t, cache, nil, env...)
}

func newServiceWith(t *testing.T, cache bool, network wire.Sandboxes, env ...string) *fixture {
	t.Helper()
	return newServiceCfg(t, cache, Config{Network: network}, env...)
}

// newServiceCfg: cfg's Network and IdleTimeout are used.
func newServiceCfg(t *testing.T, cache bool, cfg Config, env ...string) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), root: t.TempDir()}
	if cache {
		assert.NilError(t, os.WriteFile(filepath.Join(f.root, "history.db"), nil, 0o600))
	}
	self, err := os.Executable()
	assert.NilError(t, err)
	for _, e := range append([]string{fakeHelperEnv + "=" + f.dir}, env...) {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	f.svc, err = New(Config{
		Binary:      self,
		RunDir:      filepath.Join(t.TempDir(), "run"),
		Helper:      wire.Config{Root: f.root, Network: cfg.Network != nil},
		Images:      images{},
		Network:     cfg.Network,
		IdleTimeout: cfg.IdleTimeout,
	})
	assert.NilError(t, err)
	t.Cleanup(func() { f.svc.Close() })
	return f
}

// starts are the pids of the helpers started so far.
func (f *fixture) starts() []int {
	raw, _ := os.ReadFile(filepath.Join(f.dir, "starts"))
	var pids []int
	for _, l := range strings.Fields(string(raw)) {
		pid, _ := strconv.Atoi(l)
		pids = append(pids, pid)
	}
	return pids
}

func TestNoCacheStartsNothing(t *testing.T) {
	f := newService(t, false)
	du, err := f.svc.DiskUsage(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(du.TotalCount, int64(0)))
	assert.Check(t, du.Items != nil, "an empty list, not null")
	rep, err := f.svc.Prune(context.Background(), wire.PruneOptions{All: true})
	assert.NilError(t, err)
	assert.Check(t, rep.CachesDeleted != nil && len(rep.CachesDeleted) == 0)
	assert.Check(t, is.Len(f.starts(), 0))
}

// TestOneHelperForConcurrentFirstUses: the first requests arrive at once;
// one helper starts and serves them all, calling back into berthd.
func TestOneHelperForConcurrentFirstUses(t *testing.T) {
	f := newService(t, true)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < cap(errs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			du, err := f.svc.DiskUsage(context.Background())
			if err == nil && du.TotalCount != 3 {
				err = fmt.Errorf("TotalCount %d, want busybox's 3 layers", du.TotalCount)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.Check(t, err)
	}
	assert.Check(t, is.Len(f.starts(), 1))
	rep, err := f.svc.Prune(context.Background(), wire.PruneOptions{Fields: map[string]string{"id": "abc"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(rep.CachesDeleted, []string{"abc"}))
}

// serve runs handler on a unix socket, as berthd's API server would.
func serve(t *testing.T, h http.Handler) string {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	srv := &http.Server{Handler: h}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func upgradeRoutes(svc *Service) http.Handler {
	errs := func(w http.ResponseWriter, err error) {
		if err != nil {
			wire.WriteError(w, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.44/session", func(w http.ResponseWriter, r *http.Request) { errs(w, svc.ServeSession(r.Context(), w, r)) })
	mux.HandleFunc("POST /grpc", func(w http.ResponseWriter, r *http.Request) { errs(w, svc.ServeUpgrade(r.Context(), w, r)) })
	return mux
}

// upgrade sends an upgrade request and, in the same write, the first
// line of the new protocol (so it sits in berthd's read buffer).
func upgrade(t *testing.T, sock, path string, header string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	assert.NilError(t, err)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: berthd\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n%sContent-Length: 0\r\n\r\nfirst line\n", path, header)
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	assert.NilError(t, err)
	for {
		l, err := br.ReadString('\n')
		assert.NilError(t, err)
		if l == "\r\n" {
			break
		}
	}
	return c, br, strings.TrimSpace(status)
}

func TestUpgradesJoinTheHelper(t *testing.T) {
	f := newService(t, false)
	sock := serve(t, upgradeRoutes(f.svc))
	for round := 0; round < 3; round++ {
		c, br, status := upgrade(t, sock, "/v1.44/session", "")
		assert.Check(t, is.Equal(status, "HTTP/1.1 101 Switching Protocols"))
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, "first line\n"), "bytes sent with the request reach the helper")
		fmt.Fprintf(c, "round %d\n", round)
		line, err = br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, fmt.Sprintf("round %d\n", round)))
		c.Close()

		c, br, status = upgrade(t, sock, "/grpc", "")
		assert.Check(t, is.Equal(status, "HTTP/1.1 101 Switching Protocols"))
		line, err = br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, "grpc:first line\n"))
		c.Close()
	}
	assert.Check(t, is.Len(f.starts(), 1))
}

func TestUpgradeRefused(t *testing.T) {
	f := newService(t, false)
	w := &recorder{header: http.Header{}}
	r, err := http.NewRequest(http.MethodPost, "/session", nil)
	assert.NilError(t, err)
	r.Header.Set("X-Refuse", "no session id")
	err = f.svc.ServeSession(context.Background(), w, r)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "refused: no session id"))
	assert.Check(t, !w.hijacked, "a refused upgrade leaves the client's connection to the API")
}

type recorder struct {
	header   http.Header
	hijacked bool
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *recorder) WriteHeader(int)             {}
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return nil, nil, errors.New("not in this test")
}

// TestGRPCOverHTTP2: gRPC sent as HTTP/2 on berthd's socket streams to the
// helper and back, trailers included.
func TestGRPCOverHTTP2(t *testing.T) {
	f := newService(t, false)
	sock := serve(t, f.svc)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		Protocols: new(http.Protocols),
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, "http://berthd/moby.buildkit.v1.Control/Status", pr)
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		assert.Check(t, err)
		respc <- resp
	}()
	// full duplex: each message comes back before the next is sent
	fmt.Fprint(pw, "message 1\n")
	resp := <-respc
	assert.Assert(t, resp != nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, fmt.Sprintf("message %d\n", i)))
		if i < 3 {
			fmt.Fprintf(pw, "message %d\n", i+1)
		}
	}
	pw.Close()
	_, err = io.ReadAll(br)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resp.Trailer.Get("Grpc-Status"), "0"))
}

// TestHelperKilledStartsAgain: a helper that dies is replaced by the next
// request, the second and third time too.
func TestHelperKilledStartsAgain(t *testing.T) {
	f := newService(t, true)
	for round := 1; round <= 3; round++ {
		du, err := f.svc.DiskUsage(context.Background())
		assert.NilError(t, err)
		assert.Check(t, is.Equal(du.TotalCount, int64(3)))
		pids := f.starts()
		assert.Assert(t, is.Len(pids, round))
		pid := pids[round-1]
		assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
		assert.Check(t, waitGone(pid, 10*time.Second))
		deadline := time.Now().Add(10 * time.Second)
		for f.svc.running() != nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		assert.Check(t, f.svc.running() == nil, "the service saw the helper exit")
	}
}

// TestCloseStopsHelper: Close closes the lifeline; the helper stops, and
// nothing starts one again.
func TestCloseStopsHelper(t *testing.T) {
	f := newService(t, true)
	_, err := f.svc.DiskUsage(context.Background())
	assert.NilError(t, err)
	pid := f.starts()[0]
	assert.NilError(t, f.svc.Close())
	_, err = os.Stat(filepath.Join(f.dir, "stopped-"+strconv.Itoa(pid)))
	assert.Check(t, err, "the helper saw its lifeline close")
	assert.Check(t, waitGone(pid, 10*time.Second))
	_, err = f.svc.DiskUsage(context.Background())
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.Len(f.starts(), 1))
	assert.NilError(t, f.svc.Close(), "a second Close")
}

// TestStartFails: a helper that cannot serve says why; the request fails
// with that, nothing is left running, and the next request tries again.
func TestStartFails(t *testing.T) {
	f := newService(t, true, fakeFailEnv+"=bbolt: database is locked")
	for round := 1; round <= 2; round++ {
		_, err := f.svc.DiskUsage(context.Background())
		assert.Check(t, is.ErrorContains(err, "start BuildKit: bbolt: database is locked"))
		assert.Check(t, is.Len(f.starts(), round))
		assert.Check(t, waitGone(f.starts()[round-1], 10*time.Second))
		assert.Check(t, f.svc.running() == nil)
	}
}

func TestNewChecks(t *testing.T) {
	_, err := New(Config{RunDir: "/run", Helper: wire.Config{Root: "/r"}, Images: images{}})
	assert.Check(t, is.ErrorContains(err, "required"))
	_, err = New(Config{Binary: "b", RunDir: "/run", Helper: wire.Config{Root: "/r", Network: true}, Images: images{}})
	assert.Check(t, is.ErrorContains(err, "Network"))
}

// netTable is berthd's build sandboxes: who is joined.
type netTable struct {
	mu     sync.Mutex
	joined map[string]bool
	left   []string
}

func (n *netTable) Join(_ context.Context, id, _ string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.joined[id] = true
	return "/run/netns/" + id, nil
}

func (n *netTable) Leave(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.joined[id] {
		return errdefs.ErrNotFound.WithMessage("no sandbox " + id)
	}
	delete(n.joined, id)
	n.left = append(n.left, id)
	return nil
}

func (n *netTable) state() (joined int, left []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.joined), append([]string(nil), n.left...)
}

// TestDeadHelperNetworksReleased: the step networks a helper joined and
// did not leave are released when it dies or stops, each once.
func TestDeadHelperNetworksReleased(t *testing.T) {
	tbl := &netTable{joined: map[string]bool{}}
	f := newServiceWith(t, true, tbl, fakeJoinEnv+"=a b c")
	_, err := f.svc.DiskUsage(context.Background())
	assert.NilError(t, err)
	joined, left := tbl.state()
	assert.Check(t, is.Equal(joined, 2))
	assert.Check(t, is.DeepEqual(left, []string{"a"}))

	pid := f.starts()[0]
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	deadline := time.Now().Add(10 * time.Second)
	for f.svc.running() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	joined, left = tbl.state()
	assert.Check(t, is.Equal(joined, 0), "the killed helper's b and c are released")
	assert.Check(t, is.Len(left, 3))

	// a stopped helper's too
	_, err = f.svc.DiskUsage(context.Background())
	assert.NilError(t, err)
	joined, _ = tbl.state()
	assert.Check(t, is.Equal(joined, 2))
	assert.NilError(t, f.svc.Close())
	joined, left = tbl.state()
	assert.Check(t, is.Equal(joined, 0))
	assert.Check(t, is.Len(left, 6))
}

// TestIdleHelperStops: with an idle timeout, the helper stops once nothing
// is in flight for that long (not while a session is open), and the next
// request starts a new one; three times.
func TestIdleHelperStops(t *testing.T) {
	const idle = 200 * time.Millisecond
	f := newServiceCfg(t, true, Config{IdleTimeout: idle})
	sock := serve(t, upgradeRoutes(f.svc))
	for round := 1; round <= 3; round++ {
		du, err := f.svc.DiskUsage(context.Background())
		assert.NilError(t, err)
		assert.Check(t, is.Equal(du.TotalCount, int64(3)))
		assert.Assert(t, is.Len(f.starts(), round))
		pid := f.starts()[round-1]

		// a session open for several idle periods keeps it
		c, br, status := upgrade(t, sock, "/v1.44/session", "")
		assert.Check(t, is.Equal(status, "HTTP/1.1 101 Switching Protocols"))
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, "first line\n"))
		time.Sleep(3 * idle) // an absence: nothing to wait for
		assert.Check(t, f.svc.running() != nil, "stopped with a session open")
		fmt.Fprint(c, "still here\n")
		line, err = br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, "still here\n"))
		c.Close()

		assert.Check(t, waitGone(pid, 10*time.Second), "idle helper stopped")
		_, err = os.Stat(filepath.Join(f.dir, "stopped-"+strconv.Itoa(pid)))
		assert.Check(t, err, "stopped through its lifeline")
	}
}

// TestIdleStopRacesRequests: requests that arrive while an idle helper
// stops are served by the next one (never two helpers at once).
func TestIdleStopRacesRequests(t *testing.T) {
	f := newServiceCfg(t, true, Config{IdleTimeout: time.Millisecond})
	for i := 0; i < 16; i++ {
		var wg sync.WaitGroup
		for j := 0; j < 3; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				du, err := f.svc.DiskUsage(context.Background())
				assert.Check(t, err)
				if err == nil {
					assert.Check(t, is.Equal(du.TotalCount, int64(3)))
				}
			}()
		}
		wg.Wait()
		live := 0
		for _, pid := range f.starts() {
			if !waitGone(pid, 0) {
				live++
			}
		}
		assert.Check(t, live <= 1, "%d helpers at once", live)
		// jitter, so that some batches meet a helper that is stopping
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		if i == 10 { // and one certainly stopped
			deadline := time.Now().Add(10 * time.Second)
			for f.svc.running() != nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	assert.NilError(t, f.svc.Close())
	for _, pid := range f.starts() {
		assert.Check(t, waitGone(pid, 10*time.Second), "helper %d", pid)
	}
	assert.Check(t, len(f.starts()) > 1, "the helper stopped between requests at least once")
}

// TestNoHelperBinary: without berth-buildkitd next to berthd, a build
// request fails with why, each time, and berthd serves on.
func TestNoHelperBinary(t *testing.T) {
	root := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(root, "history.db"), nil, 0o600))
	svc, err := New(Config{
		Binary: filepath.Join(t.TempDir(), "berth-buildkitd"),
		RunDir: filepath.Join(t.TempDir(), "run"),
		Helper: wire.Config{Root: root},
		Images: images{},
	})
	assert.NilError(t, err)
	for i := 0; i < 2; i++ {
		_, err = svc.DiskUsage(context.Background())
		assert.Check(t, is.ErrorContains(err, "start BuildKit"))
		assert.Check(t, is.ErrorContains(err, "no such file or directory"))
	}
	assert.NilError(t, svc.Close())
}
