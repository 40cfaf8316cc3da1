// Command berth-imagecopy makes one copy of berthd's image service with
// containers/image (a pull, push, load, save, OCI layout import, or a
// registry login) and exits; berthd starts one per request (package
// registry/imagewire), so that what registries and archives send is parsed
// outside berthd, and containers/image is not in berthd's memory. It
// reads an imagewire.Request on stdin and writes imagewire.Lines on
// stdout. Descriptor 3 is its lifeline: EOF there (berthd gone, or the
// request given up) ends it at once; SIGTERM (the request given up)
// cancels its copy first.
package main

import (
	"context"
	"encoding/json"
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
	fail := func(err error) int {
		write(imagewire.Line{Error: &imagewire.Error{Status: httpstatus.FromError(err), Message: err.Error()}})
		return 1
	}
	var req imagewire.Request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fail(fmt.Errorf("berth-imagecopy: read the request: %w", err))
	}
	// The store is berthd's, with its containers' mounts: it is never shut
	// down here (that would unmount the driver's home); its locks go with
	// the process.
	store, err := transfer.OpenStore(req.Store)
	if err != nil {
		return fail(err)
	}
	res, err := transfer.New(store).Do(ctx, req, func(m jsonstream.Message) {
		write(imagewire.Line{Progress: &m})
	})
	if err != nil {
		return fail(err)
	}
	write(imagewire.Line{Result: res})
	return 0
}
