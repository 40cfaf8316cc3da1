package runtime

import (
	"context"

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
// holds: not-running (the default), next-exit or removed.
func (s *Service) Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan WaitResult, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid condition: " + string(cond))
	}
	c.mu.Lock()
	startExits := c.exits()
	c.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		for {
			c.mu.Lock()
			ch, running := c.changed, c.running() || c.rec.State.Status == container.StateRestarting
			code, exits := c.rec.State.ExitCode, c.exits()
			c.mu.Unlock()
			switch cond {
			case container.WaitConditionRemoved:
				select {
				case <-c.removed:
					out <- WaitResult{ExitCode: code}
					return
				default:
				}
			case container.WaitConditionNextExit:
				if exits > startExits {
					out <- WaitResult{ExitCode: code}
					return
				}
			default:
				if !running {
					out <- WaitResult{ExitCode: code}
					return
				}
			}
			select {
			case <-ch:
			case <-c.removed:
				if cond != container.WaitConditionRemoved {
					c.mu.Lock()
					code = c.rec.State.ExitCode
					c.mu.Unlock()
					out <- WaitResult{ExitCode: code}
					return
				}
			case <-ctx.Done():
				out <- WaitResult{Err: ctx.Err()}
				return
			}
		}
	}()
	return out, nil
}

// exits counts finished runs, so next-exit can tell a new exit from an old one.
func (c *ctr) exits() int {
	if c.rec.State.FinishedAt.IsZero() {
		return 0
	}
	return int(c.rec.State.FinishedAt.UnixNano())
}
