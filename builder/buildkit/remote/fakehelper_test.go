package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/moby/moby/api/types/build"
)

// The test binary is its own fake berth-buildkitd: started with
// fakeHelperEnv set, TestMain runs fakeHelper instead of the tests. The
// fake speaks the real protocol (file descriptors, ready pipe, socket,
// callbacks) with trivial builds:
//   - POST /session switches protocols and echoes; X-Refuse answers 400;
//   - POST /grpc switches protocols, says "grpc:" and echoes;
//   - GET df asks berthd for image "busybox" over the callbacks and
//     answers its layer count as TotalCount;
//   - POST prune answers the id field as the deleted record;
//   - gRPC over HTTP/2 echoes the body and ends with a grpc-status trailer.
//
// It appends its pid to <dir>/starts, and writes <dir>/stopped-<pid> when
// its lifeline closes.
const (
	fakeHelperEnv = "BERTH_TEST_FAKE_BUILDKITD"
	fakeFailEnv   = "BERTH_TEST_FAKE_BUILDKITD_FAIL"
	fakeJoinEnv   = "BERTH_TEST_FAKE_BUILDKITD_JOIN" // sandboxes to join at start, and leave one of
)

func fakeHelper() int {
	var cfg wire.Config
	ready := os.NewFile(wire.FDReady, "ready")
	if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
		fmt.Fprint(ready, err)
		return 1
	}
	dir := os.Getenv(fakeHelperEnv)
	appendLine(filepath.Join(dir, "starts"), strconv.Itoa(os.Getpid()))
	if msg := os.Getenv(fakeFailEnv); msg != "" {
		fmt.Fprint(ready, msg)
		return 1
	}
	cbConn, err := net.FileConn(os.NewFile(wire.FDCallback, "callbacks"))
	if err != nil {
		fmt.Fprint(ready, err)
		return 1
	}
	berthd, err := wire.NewClient(cbConn)
	if err != nil {
		fmt.Fprint(ready, err)
		return 1
	}
	if ids := strings.Fields(os.Getenv(fakeJoinEnv)); len(ids) > 0 {
		for _, id := range ids {
			if _, err := berthd.Join(context.Background(), id, "step"); err != nil {
				fmt.Fprint(ready, err)
				return 1
			}
		}
		if err := berthd.Leave(context.Background(), ids[0]); err != nil {
			fmt.Fprint(ready, err)
			return 1
		}
	}
	l, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		fmt.Fprint(ready, err)
		return 1
	}
	srv := &http.Server{Handler: fakeHandler(berthd)}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(l)
	io.WriteString(ready, wire.Ready)
	ready.Close()
	_, _ = io.Copy(io.Discard, os.NewFile(wire.FDLifeline, "lifeline"))
	appendLine(filepath.Join(dir, "stopped-"+strconv.Itoa(os.Getpid())), "lifeline closed")
	return 0
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

func fakeHandler(berthd *wire.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc"):
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(http.StatusOK)
			_, _ = io.Copy(flushWriter{w}, r.Body)
			w.Header().Set("Grpc-Status", "0")
		case r.URL.Path == "/session" || r.URL.Path == "/grpc":
			if r.Header.Get("X-Refuse") != "" {
				wire.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "refused: " + r.Header.Get("X-Refuse")})
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			if r.URL.Path == "/grpc" {
				fmt.Fprint(rw, "grpc:")
			}
			rw.Flush()
			echo(rw.Reader, conn)
		case r.URL.Path == wire.PathDiskUsage:
			ic, err := berthd.ImageContent(r.Context(), "busybox")
			if err != nil {
				wire.WriteError(w, err)
				return
			}
			wire.WriteJSON(w, http.StatusOK, build.DiskUsage{TotalCount: int64(len(ic.Layers))})
		case r.URL.Path == wire.PathPrune:
			var o wire.PruneOptions
			_ = json.NewDecoder(r.Body).Decode(&o)
			wire.WriteJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{o.Fields["id"]}})
		default:
			wire.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
		}
	})
}

// echo writes back each line it reads until EOF.
func echo(r *bufio.Reader, w io.Writer) {
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			if _, werr := io.WriteString(w, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}

// waitGone waits until pid is no process of ours (or a zombie nobody
// reaped): the helper's exit.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(raw), ") Z ") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
