package imagewire

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
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

// Copier runs the requests of one operation in turn (a pull's manifest
// and then its copy): in berthd a Session, one helper process.
type Copier interface {
	// Do runs req; progress goes to out (nil: dropped). Errors keep
	// their errdefs class.
	Do(req Request, out func(jsonstream.Message)) (*Result, error)
	// End ends the copier once its requests are done.
	End() error
}

// Helper runs requests in the helper binary.
type Helper struct {
	Binary string // absolute path of berth-imagecopy
}

// Begin starts a Session: it is the Helper's registry.Transfers.
func (h *Helper) Begin(ctx context.Context) (Copier, error) {
	s, err := h.Start(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Session is one helper process.
type Session struct {
	ctx    context.Context
	cmd    *exec.Cmd
	enc    *json.Encoder
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	life   *os.File // our end of its lifeline
	stderr *tail
	exited chan struct{} // closed once the helper is waited for
	waited sync.Once
	werr   error // the helper's exit
	stop   func() bool
	done   bool // its output ended
}

// Start starts a helper for requests made under ctx. A cancelled ctx ends
// the helper (SIGTERM: it cancels its copy; SIGKILL after cancelGrace).
// The Session must be ended.
func (h *Helper) Start(ctx context.Context) (*Session, error) {
	if h.Binary == "" {
		return nil, errors.New("image copy helper: no binary configured")
	}
	lr, lw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s := &Session{ctx: ctx, life: lw, stderr: &tail{}, exited: make(chan struct{})}
	s.cmd = exec.Command(h.Binary)
	s.cmd.Stderr = s.stderr
	s.cmd.ExtraFiles = []*os.File{lr} // LifelineFD
	stdout, err := s.cmd.StdoutPipe()
	if err == nil {
		s.stdin, err = s.cmd.StdinPipe()
	}
	if err == nil {
		err = s.cmd.Start()
	}
	lr.Close()
	if err != nil {
		lw.Close()
		return nil, fmt.Errorf("image copy helper: %w", err)
	}
	s.enc = json.NewEncoder(s.stdin)
	s.lines = bufio.NewScanner(stdout)
	s.lines.Buffer(make([]byte, 64<<10), maxLine)
	grace := cancelGrace
	s.stop = context.AfterFunc(ctx, func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(grace):
			_ = s.cmd.Process.Kill()
		}
	})
	return s, nil
}

// Do runs req in the session's helper and returns its Result; progress
// lines go to out (which may be nil). Errors keep the errdefs class the
// helper gave them; after a cancel it is the context's error.
func (s *Session) Do(req Request, out func(jsonstream.Message)) (*Result, error) {
	if s.done {
		return nil, s.ended(req.Op)
	}
	if err := s.enc.Encode(req); err != nil {
		s.done = true
		return nil, s.ended(req.Op)
	}
	for s.lines.Scan() {
		var l Line
		if err := json.Unmarshal(s.lines.Bytes(), &l); err != nil {
			continue // not ours (a library's stray print)
		}
		switch {
		case l.Progress != nil:
			if out != nil {
				out(*l.Progress)
			}
		case l.Result != nil:
			return l.Result, nil
		case l.Error != nil:
			return nil, errclass.Wrap(httpstatus.ToClass(l.Error.Status), "", errors.New(l.Error.Message))
		}
	}
	s.done = true
	return nil, s.ended(req.Op)
}

// ended is the error of a request the helper did not answer.
func (s *Session) ended(op string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	werr := s.wait()
	msg := strings.TrimSpace(s.stderr.String())
	if msg == "" && werr != nil {
		msg = werr.Error()
	}
	return fmt.Errorf("image copy helper (%s) ended without an answer: %s: %w", op, msg, errdefs.ErrUnknown)
}

// wait waits for the helper to exit and returns how it did.
func (s *Session) wait() error {
	s.waited.Do(func() {
		s.werr = s.cmd.Wait()
		close(s.exited)
	})
	return s.werr
}

// End ends the session: the helper reads the end of its requests and
// exits; End returns once it has.
func (s *Session) End() error {
	s.stdin.Close()
	if !s.done {
		// what is left of its output (nothing, once it has answered)
		for s.lines.Scan() {
		}
		s.done = true
	}
	err := s.wait()
	s.stop()
	s.life.Close()
	return err
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
