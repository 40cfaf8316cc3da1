// Command berth-imagecopy makes the copies of one operation of berthd's
// image service with containers/image (a pull, push, load, save, OCI
// layout import, or a registry login) and exits; berthd starts one per
// operation (package registry/imagewire), so that what registries and
// archives send is parsed outside berthd, and containers/image is not in
// berthd's memory. It reads imagewire.Requests on stdin, one after the
// other, answers each with imagewire.Lines on stdout, and exits at the end
// of its input. Descriptor 3 is its lifeline: EOF there (berthd gone)
// ends it at once; SIGTERM (the operation given up) cancels its copy
// first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/moby/moby/api/types/jsonstream"
	"go.podman.io/storage/pkg/reexec"

	"github.com/berthd/berth/engine/httpstatus"
	"github.com/berthd/berth/registry/imagewire"
	"github.com/berthd/berth/registry/transfer"
)

func main() {
	// go.podman.io/storage applies layers in a chroot through a re-exec of
	// this binary
	if reexec.Init() {
		return
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "berth-imagecopy is started by berthd: it reads a request on stdin")
		os.Exit(2)
	}
	lifeline := os.NewFile(imagewire.LifelineFD, "lifeline")
	if lifeline == nil {
		fmt.Fprintln(os.Stderr, "berth-imagecopy: no lifeline (fd 3)")
		os.Exit(2)
	}
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		os.Exit(3) // berthd is gone or gave the request up
	}()
	// berthd gave the request up (its client went away): the copy is
	// cancelled, and containers/image removes what it began
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Stdin, os.Stdout))
}

func run(ctx context.Context, in io.Reader, out io.Writer) int {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	write := func(l imagewire.Line) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(l)
	}
	fail := func(err error) {
		write(imagewire.Line{Error: &imagewire.Error{Status: httpstatus.FromError(err), Message: err.Error()}})
	}
	// Requests come in turn (a pull's manifest, then its copy), each
	// answered by progress and one Result or Error line, until berthd
	// closes stdin. The store is berthd's, with its containers' mounts: it
	// is never shut down here (that would unmount the driver's home); its
	// locks go with the process.
	dec := json.NewDecoder(in)
	var local *transfer.Local
	var opened imagewire.Store
	code := 0
	for {
		var req imagewire.Request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return code
			}
			fail(fmt.Errorf("berth-imagecopy: read the request: %w", err))
			return 1
		}
		if local == nil || req.Store != opened {
			store, err := transfer.OpenStore(req.Store)
			if err != nil {
				fail(err)
				code = 1
				continue
			}
			local, opened = transfer.New(store), req.Store
		}
		res, err := local.Do(ctx, req, func(m jsonstream.Message) {
			write(imagewire.Line{Progress: &m})
		})
		if err != nil {
			fail(err)
			code = 1
			continue
		}
		write(imagewire.Line{Result: res})
	}
}
