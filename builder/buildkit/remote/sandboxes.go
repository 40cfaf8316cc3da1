package remote

import (
	"context"
	"sync"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/containerd/errdefs"
	"github.com/sirupsen/logrus"
)

// sandboxes remembers which build-step namespaces one helper joined and
// has not left, so that when the helper dies they are released here: its
// steps' veths, addresses and namespaces are berthd's, and nobody else
// would give them back.
type sandboxes struct {
	wire.Sandboxes

	mu     sync.Mutex
	joined map[string]struct{}
	dead   bool // the helper is gone: a join still in flight is undone
}

func newSandboxes(s wire.Sandboxes) *sandboxes {
	return &sandboxes{Sandboxes: s, joined: map[string]struct{}{}}
}

func (s *sandboxes) Join(ctx context.Context, id, hostname string) (string, error) {
	path, err := s.Sandboxes.Join(ctx, id, hostname)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	dead := s.dead
	if !dead {
		s.joined[id] = struct{}{}
	}
	s.mu.Unlock()
	if dead {
		_ = s.Sandboxes.Leave(context.WithoutCancel(ctx), id)
		return "", errdefs.ErrUnavailable.WithMessage("berth-buildkitd is gone")
	}
	return path, nil
}

func (s *sandboxes) Leave(ctx context.Context, id string) error {
	err := s.Sandboxes.Leave(ctx, id)
	if err == nil || errdefs.IsNotFound(err) {
		s.mu.Lock()
		delete(s.joined, id)
		s.mu.Unlock()
	}
	return err
}

// leaveAll releases what the helper did not.
func (s *sandboxes) leaveAll() {
	s.mu.Lock()
	s.dead = true
	ids := make([]string, 0, len(s.joined))
	for id := range s.joined {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.Leave(ctx, id); err != nil {
			logrus.WithError(err).Warnf("buildkit: release the network of step sandbox %s", id)
		}
		cancel()
	}
	if len(ids) > 0 {
		logrus.Infof("buildkit: released %d step networks berth-buildkitd left", len(ids))
	}
}
