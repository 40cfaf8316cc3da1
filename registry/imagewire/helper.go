package imagewire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berthd/berth/engine/httpstatus"
	"github.com/berthd/berth/internal/errclass"
)

// LifelineFD is the helper's descriptor 3: the read end of a pipe whose
// write end only berthd holds. EOF on it means berthd is gone (or gave the
// request up): the helper exits at once.
const LifelineFD = 3

// maxLine bounds one line of the helper's output.
const maxLine = 16 << 20

// cancelGrace is how long a helper whose request was given up has to end
// its copy after SIGTERM (a var: tests shorten it).
var cancelGrace = 10 * time.Second

// Helper runs requests in the helper binary, one process each.
type Helper struct {
	Binary string // absolute path of berth-imagecopy
}

// Do runs req in a new helper process and returns its Result; progress
// lines go to out (which may be nil). A cancelled ctx ends the helper
// (SIGTERM: it cancels its copy; SIGKILL after cancelGrace) and Do returns
// once it has exited. Errors keep the errdefs class the helper gave them.
func (h *Helper) Do(ctx context.Context, req Request, out func(jsonstream.Message)) (*Result, error) {
	if h.Binary == "" {
		return nil, errors.New("image copy helper: no binary configured")
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	lr, lw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer lw.Close()
	var stderr tail
	cmd := exec.Command(h.Binary)
	cmd.Stdin = bytes.NewReader(b)
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{lr} // LifelineFD
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lr.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lr.Close()
		return nil, fmt.Errorf("image copy helper: %w", err)
	}
	lr.Close()
	// a request given up: the helper cancels its copy (containers/image
	// removes what it began) and exits; one that does not in
	// cancelGrace is killed (the store cleans up after it)
	grace, exited := cancelGrace, make(chan struct{})
	defer close(exited)
	stop := context.AfterFunc(ctx, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	})
	defer stop()

	var result *Result
	var lineErr *Error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // not ours (a library's stray print); the end decides
		}
		switch {
		case l.Progress != nil:
			if out != nil {
				out(*l.Progress)
			}
		case l.Result != nil:
			result = l.Result
		case l.Error != nil:
			lineErr = l.Error
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case lineErr != nil:
		return nil, errclass.Wrap(httpstatus.ToClass(lineErr.Status), "", errors.New(lineErr.Message))
	case result != nil && werr == nil:
		return result, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" && werr != nil {
		msg = werr.Error()
	}
	return nil, fmt.Errorf("image copy helper (%s) ended without an answer: %s: %w", req.Op, msg, errdefs.ErrUnknown)
}

// tail keeps the last 4 KiB written to it (the helper's stderr, for the
// error of a helper that died).
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
