package imagewire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The test binary is also the fake helper: with fakeEnv set it reads the
// request and answers as the mode its Op names.
const fakeEnv = "BERTH_FAKE_IMAGECOPY"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeHelper())
	}
	os.Exit(m.Run())
}

func fakeHelper() int {
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "fake: bad request:", err)
			return 2
		}
		switch req.Op {
		case "progress":
			for i := 0; i < 3; i++ {
				_ = enc.Encode(Line{Progress: &jsonstream.Message{Status: "step " + strconv.Itoa(i), ID: req.Ref}})
			}
			fmt.Println("a stray line a library printed")
			_ = enc.Encode(Line{Result: &Result{ImageID: "sha256:" + strings.Repeat("a", 64)}})
		case "pid":
			_ = enc.Encode(Line{Result: &Result{ImageID: strconv.Itoa(os.Getpid())}})
		case "notfound":
			_ = enc.Encode(Line{Error: &Error{Status: 404, Message: "manifest for x not found"}})
		case "crash":
			fmt.Fprintln(os.Stderr, "panic: the fake fell over")
			return 2
		case "stubborn":
			signal.Ignore(syscall.SIGTERM)
			lifeline := os.NewFile(LifelineFD, "lifeline")
			_, _ = io.Copy(io.Discard, lifeline)
			time.Sleep(time.Hour)
		case "hang":
			// a copy that never ends (its lifeline stays open while Do runs)
			lifeline := os.NewFile(LifelineFD, "lifeline")
			_, _ = io.Copy(io.Discard, lifeline)
			time.Sleep(time.Hour)
		}
	}
}

// do runs req alone in a new helper process.
func do(ctx context.Context, h *Helper, req Request, out func(jsonstream.Message)) (*Result, error) {
	s, err := h.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer s.End()
	return s.Do(req, out)
}

func fake(t *testing.T) *Helper {
	t.Helper()
	t.Setenv(fakeEnv, "1")
	self, err := os.Executable()
	assert.NilError(t, err)
	return &Helper{Binary: self}
}

// Progress reaches out in order, lines that are not the protocol's are
// ignored, and the Result comes back; three times (a process each).
func TestHelperProgressAndResult(t *testing.T) {
	h := fake(t)
	for round := 0; round < 3; round++ {
		var got []string
		res, err := do(context.Background(), h, Request{Op: "progress", Ref: "r" + strconv.Itoa(round)}, func(m jsonstream.Message) {
			got = append(got, m.Status+"@"+m.ID)
		})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(res.ImageID, "sha256:"+strings.Repeat("a", 64)))
		r := "r" + strconv.Itoa(round)
		assert.Check(t, is.DeepEqual(got, []string{"step 0@" + r, "step 1@" + r, "step 2@" + r}))
	}
	// no out: progress is dropped
	_, err := do(context.Background(), h, Request{Op: "progress"}, nil)
	assert.NilError(t, err)
}

// A session's requests run in turn in one helper process, an error does
// not end it, and End returns once the helper has exited; a helper that
// dies ends its session's later requests with ErrUnknown.
func TestHelperSession(t *testing.T) {
	h := fake(t)
	s, err := h.Start(context.Background())
	assert.NilError(t, err)
	var pids []string
	for round := 0; round < 3; round++ {
		res, err := s.Do(Request{Op: "pid"}, nil)
		assert.NilError(t, err)
		pids = append(pids, res.ImageID)
		_, err = s.Do(Request{Op: "notfound"}, nil)
		assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	}
	assert.Check(t, is.DeepEqual(pids, []string{pids[0], pids[0], pids[0]}), "one process runs a session")
	assert.NilError(t, s.End())
	pid, _ := strconv.Atoi(pids[0])
	assert.Check(t, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), "the helper %d outlived End", pid)

	s, err = h.Start(context.Background())
	assert.NilError(t, err)
	_, err = s.Do(Request{Op: "crash"}, nil)
	assert.Check(t, errdefs.IsUnknown(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "the fake fell over"))
	_, err = s.Do(Request{Op: "pid"}, nil)
	assert.Check(t, errdefs.IsUnknown(err), "%v", err)
	_ = s.End()
}

// An error keeps its class and message across the process boundary; a
// helper that dies without an answer is ErrUnknown with what it said.
func TestHelperErrors(t *testing.T) {
	h := fake(t)
	_, err := do(context.Background(), h, Request{Op: "notfound"}, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Check(t, is.Error(err, "manifest for x not found"))

	_, err = do(context.Background(), h, Request{Op: "crash"}, nil)
	assert.Check(t, errdefs.IsUnknown(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "the fake fell over"))

	_, err = do(context.Background(), &Helper{Binary: "/nonexistent/berth-imagecopy"}, Request{Op: "progress"}, nil)
	assert.Check(t, err != nil)
	_, err = do(context.Background(), &Helper{}, Request{Op: "progress"}, nil)
	assert.Check(t, err != nil)
}

// A request given up (the client went away) kills its helper: Do returns
// the context's error, and the process is gone, not left running.
func TestHelperCancel(t *testing.T) {
	h := fake(t)
	for round := 0; round < 3; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := do(ctx, h, Request{Op: "hang"}, nil)
			done <- err
		}()
		pid := waitChild(t)
		cancel()
		select {
		case err := <-done:
			assert.Check(t, errors.Is(err, context.Canceled), "round %d: %v", round, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Do did not return after the cancel", round)
		}
		err := syscall.Kill(pid, 0)
		assert.Check(t, errors.Is(err, syscall.ESRCH), "round %d: the helper %d outlived its request: %v", round, pid, err)
	}
}

// A helper that does not end its copy on SIGTERM is killed after the
// grace period.
func TestHelperCancelStubborn(t *testing.T) {
	h := fake(t)
	defer func(g time.Duration) { cancelGrace = g }(cancelGrace)
	cancelGrace = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := do(ctx, h, Request{Op: "stubborn"}, nil)
		done <- err
	}()
	pid := waitChild(t)
	// it ignores SIGTERM once it has started: wait for it to get there
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "SigIgn:" {
				if v, err := strconv.ParseUint(f[1], 16, 64); err == nil && v&(1<<(uint(syscall.SIGTERM)-1)) != 0 {
					return poll.Success()
				}
			}
		}
		return poll.Continue("the fake does not ignore SIGTERM yet")
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(5*time.Millisecond))
	cancel()
	select {
	case err := <-done:
		assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Do did not return: the stubborn helper was not killed")
	}
	assert.Check(t, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), "the helper %d outlived its request", pid)
}

// waitChild waits for this process's one child that runs this binary.
func waitChild(t *testing.T) int {
	t.Helper()
	var pid int
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		pid = childOf(os.Getpid())
		if pid == 0 {
			return poll.Continue("no helper yet")
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(5*time.Millisecond))
	return pid
}

func childOf(parent int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(parent) && f[0] != "Z" {
			return pid
		}
	}
	return 0
}
