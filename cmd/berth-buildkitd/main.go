// Command berth-buildkitd runs berth's BuildKit (package builder/buildkit)
// in a process of its own, for berthd, which starts it on the first build
// (package builder/buildkit/remote; the protocol and the file descriptors
// it is given: package builder/buildkit/wire). It is not meant to be run by
// hand.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berth/builder/buildkit"
	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/sirupsen/logrus"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "berth-buildkitd is started by berthd; it is not meant to be run by hand")
		os.Exit(2)
	}
	ready := os.NewFile(wire.FDReady, "ready")
	if err := run(os.Args[1], ready); err != nil {
		logrus.WithError(err).Error("berth-buildkitd")
		if ready != nil {
			fmt.Fprint(ready, err.Error())
		}
		os.Exit(1)
	}
}

func run(arg string, ready *os.File) error {
	var cfg wire.Config
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	if cfg.Debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	lifeline := os.NewFile(wire.FDLifeline, "lifeline")
	cbFile := os.NewFile(wire.FDCallback, "callbacks")
	if lifeline == nil || cbFile == nil || ready == nil {
		return errors.New("started without berthd's file descriptors")
	}
	cbConn, err := net.FileConn(cbFile)
	cbFile.Close()
	if err != nil {
		return fmt.Errorf("callback connection: %w", err)
	}
	berthd, err := wire.NewClient(cbConn)
	if err != nil {
		return fmt.Errorf("callback connection: %w", err)
	}
	deps := buildkit.Deps{
		Root:         cfg.Root,
		Images:       berthd,
		HostGateway:  cfg.HostGateway,
		DNS:          cfg.DNS,
		CgroupParent: cfg.CgroupParent,
	}
	if cfg.Network {
		deps.Network = berthd
	}
	svc, err := buildkit.New(deps)
	if err != nil {
		return err
	}
	l, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(svc), ReadHeaderTimeout: 30 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logrus.WithError(err).Error("berth-buildkitd: serve")
		}
	}()
	if _, err := io.WriteString(ready, wire.Ready); err != nil {
		return err
	}
	ready.Close()

	// Until berthd closes the lifeline (or dies) or we are told to stop.
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, lifeline); close(stop) }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-sigs:
	}
	err = svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	srv.Close()
	os.Remove(cfg.Socket)
	return err
}

// handler serves berthd: the session and Control API upgrades, gRPC over
// HTTP/2, and the cache's df and prune.
func handler(svc *buildkit.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			svc.ServeHTTP(w, r)
			return
		}
		var err error
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/session":
			err = svc.ServeSession(r.Context(), w, r)
		case r.Method == http.MethodPost && r.URL.Path == "/grpc":
			err = svc.ServeUpgrade(r.Context(), w, r)
		case r.Method == http.MethodGet && r.URL.Path == wire.PathDiskUsage:
			du, derr := svc.DiskUsage(r.Context())
			if err = derr; err == nil {
				wire.WriteJSON(w, http.StatusOK, du)
			}
		case r.Method == http.MethodPost && r.URL.Path == wire.PathPrune:
			var o wire.PruneOptions
			if err = json.NewDecoder(r.Body).Decode(&o); err == nil {
				rep, perr := svc.Prune(r.Context(), o)
				if err = perr; err == nil {
					wire.WriteJSON(w, http.StatusOK, rep)
				}
			}
		default:
			wire.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
			return
		}
		if err != nil {
			wire.WriteError(w, err)
		}
	})
}
