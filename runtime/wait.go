package runtime

import (
	"context"
	"errors"

	"github.com/berthd/berth/internal/safe"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// WaitResult is the answer of a wait.
type WaitResult struct {
	ExitCode int
	Err      error
}

// Wait resolves the container now (so a missing one is a 404 before any
// answer is written) and returns a channel that yields once the condition
// holds, as dockerd's: not-running (the default) holds at once for a
// container that is not running, else at its next exit, even one its
// restart policy follows with a restart (a restarting container counts as
// running); next-exit at the next exit; removed once it is gone. Every
// condition also ends with the container's removal.
func (s *Service) Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan WaitResult, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid condition: " + string(cond))
	}
	c.mu.Lock()
	startExits := c.exitSeq
	c.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		res := WaitResult{Err: errors.New("wait ended by an internal error")}
		defer func() { out <- res }()
		defer safe.Recover("wait for container " + short(c.rec.ID))
		res = s.waitFor(ctx, c, cond, startExits)
	}()
	return out, nil
}

func (s *Service) waitFor(ctx context.Context, c *ctr, cond container.WaitCondition, startExits int) WaitResult {
	for {
		c.mu.Lock()
		ch := c.changed
		running := c.running() || c.rec.State.Status == container.StateRestarting
		code, exited := c.rec.State.ExitCode, c.exitSeq > startExits
		c.mu.Unlock()
		switch cond {
		case container.WaitConditionRemoved:
		case container.WaitConditionNextExit:
			if exited {
				return WaitResult{ExitCode: code}
			}
		default:
			if !running || exited {
				return WaitResult{ExitCode: code}
			}
		}
		select {
		case <-ch:
		case <-c.removed:
			c.mu.Lock()
			code = c.rec.State.ExitCode
			c.mu.Unlock()
			return WaitResult{ExitCode: code}
		case <-ctx.Done():
			return WaitResult{Err: ctx.Err()}
		}
	}
}
